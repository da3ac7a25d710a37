"""Join the stores of a sharded run (``--shard I/N``) into the store one run would have written."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from vscr_cli.errors import StoreError
from vscr_cli.store import Store, StoreWriter, changed_keys, open_store

SHARD = "shard"


def _shard_of(store: Store) -> dict[str, Any]:
    shard = store.record.params.get(SHARD)
    if not isinstance(shard, dict) or not {"index", "count", "videos"} <= shard.keys():
        raise StoreError(f"{store.location}: not a shard (made without --shard I/N)")
    return shard


def _unsharded_params(store: Store) -> dict[str, Any]:
    """A shard's parameters without its ``shard`` entry: those of the run it is part of."""
    return {key: value for key, value in store.record.params.items() if key != SHARD}


def _check_agreement(stores: Sequence[Store]) -> None:
    """Same kind, schema, parameters (but the shard), inputs and label space."""
    first = stores[0]
    for store in stores[1:]:
        for what in ("kind", "schema", "inputs", "label_space"):
            if getattr(store.record, what) != getattr(first.record, what):
                raise StoreError(f"{store.location}: its {what} differs from {first.location}'s")
        if changed := changed_keys(_unsharded_params(store), _unsharded_params(first)):
            raise StoreError(f"{store.location}: made with other parameters than {first.location} ({', '.join(changed)})")


def input_order(stores: Sequence[Store]) -> list[str]:
    """The run's videos in input order, rebuilt from the shards (shard I holds positions I, I+N, ...);
    checks that all N shards are there once each and that each holds all its videos."""
    shards = [_shard_of(store) for store in stores]
    count = shards[0]["count"]
    by_index: dict[int, Store] = {}
    for store, shard in zip(stores, shards):
        if shard["count"] != count:
            raise StoreError(f"{store.location}: is shard {shard['index']}/{shard['count']}, the others are of {count}")
        if shard["index"] in by_index:
            raise StoreError(f"{store.location}: shard {shard['index']}/{count} is also given as {by_index[shard['index']].location}")
        by_index[shard["index"]] = store
        done = set(store.videos) | {s["video"] for s in store.record.skipped}
        if missing := [v for v in shard["videos"] if v not in done]:
            raise StoreError(f"{store.location}: shard is missing {len(missing)} of its videos ({', '.join(missing[:3])})")
    if absent := sorted(set(range(count)) - by_index.keys()):
        raise StoreError(f"missing shard(s) {', '.join(f'{i}/{count}' for i in absent)}")
    total = sum(len(shard["videos"]) for shard in shards)
    order: list[str] = [""] * total
    for shard in shards:
        positions = range(shard["index"], total, count)
        if len(positions) != len(shard["videos"]):
            raise StoreError(f"the shards of {count} do not come from one list of videos (shard {shard['index']} holds {len(shard['videos'])})")
        for position, video_id in zip(positions, shard["videos"]):
            order[position] = video_id
    if len(set(order)) != total:
        raise StoreError("the shards share videos: they do not come from one list of videos")
    return order


def merge_shards(locations: Sequence[str | Path], target: Path | None, overwrite: bool = False, on_video: Callable[[], None] | None = None) -> list[str]:
    """Write the shards' videos into one store at ``target`` in input order, with the shards'
    common params (without ``shard``): array for array what one unsharded run writes. Returns the videos."""
    with ExitStack() as stack:
        stores = [stack.enter_context(open_store(location)) for location in locations]
        _check_agreement(stores)
        order = input_order(stores)
        holder = {video_id: store for store in stores for video_id in store.videos}
        reasons = {s["video"]: s["reason"] for store in stores for s in store.record.skipped}
        first = stores[0].record
        with StoreWriter(target, kind=first.kind, params=_unsharded_params(stores[0]), inputs=first.inputs, overwrite=overwrite) as writer:
            writer.record.created_by["merged"] = [store.location for store in stores]
            writer.record.label_space = first.label_space
            for video_id in order:
                if video_id in holder:
                    store = holder[video_id]
                    arrays = {name: store.read(video_id, name) for name in store.arrays(video_id)}
                    writer.write_video(video_id, store.frame_index(video_id), arrays, store.video_attrs(video_id))
                else:
                    writer.skip(video_id, reasons[video_id])
                if on_video is not None:
                    on_video()
    return [video_id for video_id in order if video_id in holder]
