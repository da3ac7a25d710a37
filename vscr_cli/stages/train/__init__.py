"""Training stage: the two-stream VSCR network under the unified contrastive objective (paper Sec. 3-4).

Modules: :mod:`.data` (caches, samples, crops, batches), :mod:`.loop` (the step, the optimiser,
checkpoints, the log), :mod:`.run` (``vscr train``: the configuration and the staged model folder);
the settings are :mod:`vscr_cli.settings.train`'s tree.

Data: the frames of an edges store and a cam store that agree on videos and frame indices,
the frames themselves (read once into a frame cache, a ``frames`` store in the output folder;
for the flow encoder also the optical flow of every frame pair the motion clips use, computed
once into a ``flows`` store beside it) and the video tags. Each process keeps the arrays it
has read in memory (up to ``READ_CACHE_BYTES``). Every iteration draws its batch and
augmentations from a generator seeded by (seed, iteration, slot), so a run resumed from a
checkpoint sees exactly the batches the uninterrupted run would have seen, and each
DistributedDataParallel process takes its own slots of the same global batch.

Per sample: a random square window, ``crop / s`` pixels a side for a scale ``s`` drawn uniformly
from [``scale_min``, ``scale_max``] (SPML: 0.5-1.5) and resized to ``crop`` x ``crop`` (frames
smaller than the window are padded, and the padding ignored), and a horizontal flip, applied
alike to the frame, its edge segments, its CAM pseudo-label and the motion clip (``clip_length`` frames ``clip_stride`` apart, centred
on the frame; for the flow encoder, the Farneback optical flow between consecutive clip
frames, computed on the whole frames and cropped like them, scaled by the resize, x-flow negated on a
flip). Images and flows are resized bilinearly, labels and segments by nearest neighbour.

Step: the objective of Eq. 4 (vscr_cli.core.losses) on the pixel embeddings, plus the
cross-entropy of the segmentation head on CAM pseudo-labels of labeled frames (the head sees
detached embeddings); SGD with momentum, weight decay and the poly learning-rate policy.
"""

from vscr_cli.stages.train.data import CROP_REDRAWS, FrameCache, SampleReader, at_size, batch_slots, build_frame_cache, crop_position, open_frame_cache
from vscr_cli.stages.train.loop import poly_learning_rate, train, training_losses
from vscr_cli.stages.train.run import preset_for, resolve_config, run
from vscr_cli.stages.training_data import open_training_inputs

__all__ = [
    "CROP_REDRAWS",
    "FrameCache",
    "SampleReader",
    "at_size",
    "batch_slots",
    "build_frame_cache",
    "crop_position",
    "open_frame_cache",
    "open_training_inputs",
    "poly_learning_rate",
    "preset_for",
    "resolve_config",
    "run",
    "train",
    "training_losses",
]
