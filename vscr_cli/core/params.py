"""The core's parameters as plain data (no torch), so the command line can offer them without
importing the networks: the objective of Eq. 4 and its clustering, and the k-NN readout's vote."""

from __future__ import annotations

from dataclasses import dataclass

#: Grid of initial clusters used in training by SPML (12 x 12 at inference).
TRAIN_GRID: tuple[int, int] = (6, 6)
#: EM iterations (paper Sec. 4.2: "the spherical Kmeans clustering iteration is 10").
ITERATIONS = 10
#: Prototypes that vote for each segment (SPML votes with the top-k; k measured in docs/train.md).
NEIGHBOURS = 20


@dataclass(frozen=True)
class ObjectiveConfig:
    """Hyper-parameters of Eq. 4 and of the clustering (defaults: paper / SPML)."""

    edge_concentration: float = 16.0
    cam_concentration: float = 6.0
    tag_concentration: float = 8.0
    edge_weight: float = 0.3
    cam_weight: float = 0.3
    tag_weight: float = 0.1
    use_edge: bool = True
    use_cam: bool = True
    use_tag: bool = True
    #: False drops D_u frames entirely (the paper's "w/o unlabeled samples" ablation).
    use_unlabeled: bool = True
    grid: tuple[int, int] = TRAIN_GRID
    iterations: int = ITERATIONS
    use_location: bool = True
