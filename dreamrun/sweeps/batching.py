"""Jobs that dream together: one network, and one forward and backward pass per step for all of them.

Each job runs on the job skeleton (dreamrun.jobs.skeleton) in a thread of its own, as it would alone:
its own input, jitter generator, step size and steps, observers, files and result.json. Only the
gradient of its objective is asked of a Rendezvous, which the launching thread serves: once every
running job has asked, it stacks the images of one size into a batch, runs the shared network once,
and hands each job the gradient of its own objective on its own image. A job's gradient does not depend
on the others in its batch (the network is in eval mode: each image goes its own way through it). Its
pixels are those its solo run makes, bit for bit, where the device's kernels compute an image in a
batch as they compute it alone (see dream_together's exact).

Jobs can dream together when they share what the batch is made of: the network and its weights, the
input image and its size, the octave sizes, precision and device (group_key). The rest may differ.
"""
import copy
import logging
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from omegaconf import OmegaConf

from dreamrun.config.schema import DreamConfig, Mode
from dreamrun.core.octaves import check_octaves, octave_sizes, resize
from dreamrun.core.tiles import GRADIENT, MEMORY_SHARE, NEVER_TILE, bytes_per_pixel, free_memory, tile_side
from dreamrun.errors import DreamError
from dreamrun.jobs.dream import DreamJob
from dreamrun.jobs.dreamer import (Dreamer, backend_settings_for, build_dreamer, compile_target, configure_network,
                                   resolve_device, setup_device, transforms_of)
from dreamrun.jobs.kinds import job_kind
from dreamrun.jobs.skeleton import JobKind, JobResult, load_input, run_job
from dreamrun.nets.backends import backend_settings
from dreamrun.nets.build import build_model
from dreamrun.nets.feature_net import FeatureNet, feature_net
from dreamrun.outputs.stdout import stdout_to_stderr

log = logging.getLogger(__name__)

MAX_BATCH = 64  # images per pass, however much memory is free: beyond this a batch is no faster


GROUP_KEYS = ["model", "input", "param", "transforms", "octaves", "octave_scale", "precision", "device",
              "channels_last", "compile", "gradient", "tile"]


def group_key(cfg: DreamConfig) -> Optional[str]:
    """What jobs must share to dream in one batch, as text; None for a job that dreams alone. (param: a
    noise input is drawn in its space; transforms: they set the size the network sees, where exact checks
    the batch.)

    Random weights (model.weights=null) are drawn from the job's seed, so there the seed is shared too.
    Guided, seamless and explicitly tiled dreams, and zooms, dream alone.
    """
    if cfg.mode != Mode.dream or cfg.guide.path or cfg.seamless or cfg.tile.size not in (*NEVER_TILE, "auto"):
        return None
    shared = OmegaConf.masked_copy(cfg, GROUP_KEYS)
    if cfg.model.weights is None:
        shared.seed = cfg.seed
    return OmegaConf.to_yaml(shared, resolve=True)


def model_key(cfg: DreamConfig) -> str:
    """What a built model depends on: its preset, and the seed its random weights are drawn from."""
    seed = f"seed: {cfg.seed}\n" if cfg.model.weights is None else ""
    return OmegaConf.to_yaml(cfg.model, resolve=True) + seed


class Models:
    """The models a sweep's groups dream with, each built once. Each group's network is cut from its
    model: from a copy of the layers while a later group needs the model (setting a network up moves
    the tensors it shares with the model to its device and memory format), in place for the last one.
    Groups of one model dream one after another (sort them by model_key): one model is held at a time."""

    def __init__(self, groups: Sequence[Sequence["Job"]] = ()):
        self._groups_left = Counter(model_key(group[0].cfg) for group in groups)
        self._built: dict[str, torch.nn.Module] = {}

    def network(self, cfg: DreamConfig, layers: list[str], device: torch.device) -> FeatureNet:
        """cfg's model cut at layers, on device (setup_device has seeded random weights)."""
        key = model_key(cfg)
        self._groups_left[key] -= 1
        model = self._built.pop(key, None)
        if model is None:
            model = build_model(cfg.model)
        later = self._groups_left[key] > 0
        if later:
            self._built = {key: model}
        return feature_net(model, cfg.model, layers, owns_model=not later).to(device)


class Rendezvous:
    """Where the jobs of a group meet at every step: each asks for its gradient, the serving thread
    answers them all with one pass of the shared network per image size."""

    def __init__(self, net: torch.nn.Module, members: int, max_batch: int = MAX_BATCH):
        self.net = net
        self.max_batch = max_batch
        self._all_asked = threading.Condition()  # the serving thread waits on it; each member on its own event
        self._running = set(range(members))
        self._asked: dict[int, tuple["TogetherDreamer", torch.Tensor]] = {}
        self._answered = {member: threading.Event() for member in range(members)}
        self._answers: dict[int, Any] = {}
        self._stopped: Optional[BaseException] = None
    def ask(self, member: int, dreamer: "TogetherDreamer", image: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The gradient of dreamer's objective at image (1, 3, h, w), and its values; waits for the batch."""
        with self._all_asked:
            if self._stopped is not None:
                raise copy.copy(self._stopped)
            self._asked[member] = (dreamer, image)
            if set(self._asked) == self._running:
                self._all_asked.notify()
        self._answered[member].wait()
        self._answered[member].clear()
        answer = self._answers.pop(member)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def leave(self, member: int) -> None:
        """The member's job is over, however it ended: the others no longer wait for it."""
        with self._all_asked:
            self._running.discard(member)
            self._asked.pop(member, None)
            self._all_asked.notify()

    def serve(self) -> None:
        """Answer the members until every one has left. An interrupt here (Ctrl-C, SIGTERM: signals reach
        the main thread) reaches every running job at its next step, where it stops as it would alone."""
        try:
            while True:
                with self._all_asked:
                    while self._running and set(self._asked) != self._running:
                        self._all_asked.wait(timeout=1.0)  # wakes for signals too
                    if not self._running:
                        return
                    asked, self._asked = self._asked, {}
                for member, answer in self._step(asked).items():
                    self._answers[member] = answer
                    self._answered[member].set()
        except KeyboardInterrupt as interrupt:
            self.stop(interrupt)
            raise

    def stop(self, error: BaseException) -> None:
        """Every running member gets error, now if it waits for an answer, else when it next asks."""
        with self._all_asked:
            self._stopped = error
            for member in self._running:
                self._answers[member] = copy.copy(error)
                self._answered[member].set()

    def _step(self, asked: dict[int, tuple["TogetherDreamer", torch.Tensor]]) -> dict[int, Any]:
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for member, (_, image) in asked.items():
            by_size[tuple(image.shape[-2:])].append(member)
        answers: dict[int, Any] = {}
        for size, members in by_size.items():
            for start in range(0, len(members), self.max_batch):
                batch = members[start:start + self.max_batch]
                try:
                    answers.update(self._batch(size, batch, asked))
                except Exception as e:  # out of memory, or a bug: every job of this batch fails with it
                    answers.update({member: e for member in batch})
        return answers

    def _batch(self, size: tuple[int, int], members: list[int],
               asked: dict[int, tuple["TogetherDreamer", torch.Tensor]]) -> dict[int, Any]:
        images = torch.cat([asked[member][1] for member in members]).requires_grad_(True)
        acts = self.net(images)
        values = [asked[member][0].values({layer: act[i:i + 1] for layer, act in acts.items()}, size)
                  for i, member in enumerate(members)]
        # each image's gradient is its own objective's: the others' objectives do not depend on it
        (grad,) = torch.autograd.grad(sum(v["loss"] for v in values), images)
        return {member: (grad[i:i + 1], {name: value.detach() for name, value in values[i].items()})
                for i, member in enumerate(members)}


@dataclass
class Inspected:
    """An image every job of a group starts from (their common input), and the network's activations
    for it: each job's objective before the dream, computed once for the group."""

    image: torch.Tensor
    activations: dict[str, torch.Tensor]


class TogetherDreamer(Dreamer):
    """A job's dreamer whose gradients come from its group's Rendezvous."""

    rendezvous: Rendezvous
    member: int
    start: Inspected

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        grad, values = self.rendezvous.ask(self.member, self, image.detach())
        return {**values, GRADIENT: grad}  # the engine takes the batch's gradient (core.tiles.gradient)

    def inspect(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        start = self.start.image
        if image.shape == start.shape and torch.equal(image.to(start.device), start):
            return self.start.activations
        return super().inspect(image)


@dataclass
class Job:
    """One job of a sweep: its config and run dir, and after it ran, what came of it."""

    cfg: DreamConfig
    run_dir: Path
    overrides: Sequence[str] = ()
    result: Optional[JobResult] = None
    error: Optional[BaseException] = field(default=None, repr=False)  # DreamError, KeyboardInterrupt, a bug
    launch: Any = field(default=None, repr=False)  # what its launcher needs to run it (Hydra's job config)


@dataclass
class Member:
    """A job's place in a group dreaming together; called as skeleton.run_job's kind, it makes the job."""

    index: int
    count: int
    rendezvous: "Rendezvous"
    start: "Inspected"

    def __call__(self, cfg: DreamConfig, run_dir: Path, progress: Optional[bool] = None) -> "TogetherDreamJob":
        return TogetherDreamJob(cfg, run_dir, member=self)


class TogetherDreamJob(DreamJob):
    """A dream job whose gradients come from its group's shared network. It draws no progress bar: in a
    group, the launcher says when each job ends."""

    def __init__(self, cfg: DreamConfig, run_dir: Path, *, member: Member):
        super().__init__(cfg, run_dir, progress=False)
        self.member = member
        self.label = f"{self.run_dir.name}: "  # its group's jobs end together: say which line is whose

    def dreamer(self, image: torch.Tensor) -> Dreamer:
        member = self.member
        dreamer = build_dreamer(self.cfg, image=image, net=member.rendezvous.net,
                                dreamer_class=TogetherDreamer)
        dreamer.rendezvous, dreamer.member, dreamer.start = member.rendezvous, member.index, member.start
        return dreamer


# run(job, kind): runs one job in the calling thread, its outcome in job.result or job.error; kind is the
# job's kind (a Member where it dreams in a group), or None for the one its mode says
Run = Callable[[Job, Optional[Callable[..., JobKind]]], None]


def dream_together(jobs: Sequence[Job], exact: bool = True, models: Optional[Models] = None,
                   run: Optional[Run] = None) -> None:
    """Run jobs that share a group_key as one batch, each recorded as run_job records it (result, error).
    A job that cannot join (a target the network lacks) fails alone, as it would with any launcher.

    exact: each job's pixels are bit for bit those of its solo run. A dream amplifies the last bit of a
    gradient into a different dream within a few octaves (on EfficientNet-Lite0 in fp32, noise of 1e-6 on
    the input moves the final pixels by 15 levels of 255 on average), and convolutions sum in another
    order for a batch of several images than for one where their kernels say so: then exact passes the
    images one at a time (batch_invariant). exact=False batches regardless: each job still makes a dream
    of its own settings, but not its solo run's pixels.

    models: where the group's model comes from, built once for every group of the sweep that uses it.
    run: how one job runs (default: on the job skeleton, run_one; the batched launcher: through Hydra)."""
    run = run or run_one
    joining = []
    for job in jobs:
        try:
            joining.append((job, compile_target(job.cfg).layers))
        except DreamError:
            run(job, None)  # fails as it would alone, and says why in its result.json
    if not joining:
        return
    first = joining[0][0].cfg
    layers = list(dict.fromkeys(layer for _, job_layers in joining for layer in job_layers))
    # set for the whole group, the invariance check included (the jobs would undo them for each other);
    # exact: cuDNN's deterministic algorithms, chosen the same way for the check as for the dream
    try:
        settings = backend_settings_for(first, resolve_device(first.device), deterministic=exact)
    except DreamError:  # a device that is not here: each job says so alone
        settings = None
    with backend_settings(settings), stdout_to_stderr():  # the group's network downloads here, not in a job
        _dream_group([job for job, _ in joining], layers, exact, models or Models(), run)


def _dream_group(jobs: list[Job], layers: list[str], exact: bool, models: Models, run: Run) -> None:
    first = jobs[0].cfg
    try:
        net, max_batch, image = _shared_network(first, layers, exact, models, len(jobs))
    except DreamError:  # an input, octaves or a network the jobs cannot dream with: each says so alone
        net, max_batch = None, 0
    if max_batch == 0:
        for job in jobs:
            run(job, None)
        return
    with torch.no_grad():  # as a dreamer inspects an image (Dreamer.inspect)
        start = Inspected(image, net(image))
    rendezvous = Rendezvous(net, len(jobs), max_batch)
    members = [Member(index, len(jobs), rendezvous, start) for index in range(len(jobs))]
    _dream_members(jobs, members, run, exact)


def _dream_members(jobs: list[Job], members: list[Member], run: Run, exact: bool) -> None:
    """Each job of the group in a thread of its own, served until every one has ended."""
    threads = []
    main_threads = torch.get_num_threads()
    # a job's own tensor work between steps is small: in one thread it is faster than split over the
    # cores (a 6-job sweep dreams sooner on 2 cores: benchmarks/README.md), but sums in another order
    # than the job alone would, so only where pixels need not be the solo run's
    threads_per_job = main_threads if exact else 1
    for job, member in zip(jobs, members):
        thread = threading.Thread(target=_run_member, args=(run, job, member, threads_per_job),
                                  name=f"dreamrun-job-{member.index}", daemon=True)
        threads.append(thread)
        thread.start()
    try:
        members[0].rendezvous.serve()
    finally:
        for thread in threads:
            thread.join()
        torch.set_num_threads(main_threads)  # torch keeps one count for the process: the jobs' is theirs


def _run_member(run: Run, job: Job, member: Member, threads: int) -> None:
    try:
        torch.set_num_threads(threads)  # this thread's intra-op threads (OpenMP's count is per thread)
        run(job, member)
    finally:
        member.rendezvous.leave(member.index)


def _shared_network(cfg: DreamConfig, layers: list[str], exact: bool, models: Models,
                    members: int) -> tuple[torch.nn.Module, int, torch.Tensor]:
    """The group's network, cut at every layer its jobs target, how many images a pass may take, and the
    first job's input on the network's device (the jobs' common input, where they share one)."""
    image = load_input(cfg, torch.Generator().manual_seed(cfg.seed))
    check_octaves(*image.shape[-2:], cfg.octaves, cfg.octave_scale, cfg.model.min_size)
    device = setup_device(cfg)
    net = configure_network(models.network(cfg, layers, device), cfg, device)
    max_batch = batch_limit(cfg, net, device, tuple(as_seen(cfg)(image).shape[-2:]))
    image = image.to(device)
    if exact and max_batch > 1 and members > 1 and not batch_invariant(net, cfg, image, min(members, max_batch)):
        log.warning("exact=true: %s on %s gives other pixels for an image in a batch than alone, so these %d "
                    "jobs dream one image at a time (hydra.launcher.exact=false batches them, each still a "
                    "dream of its own settings)", cfg.model.name, device, members)
        max_batch = 1
    return net, max_batch, image


def batch_limit(cfg: DreamConfig, net: torch.nn.Module, device: torch.device, size: tuple[int, int]) -> int:
    """How many of the group's images of this (H, W), as the network sees them, one pass may take: what
    MEMORY_SHARE of the free memory holds, as tile.size=auto reasons for one image (core.tiles). 0 where the
    jobs would tile alone (an image bigger than auto's tile, and no transforms, which keep a job from tiling):
    they dream alone then, as they would with any launcher."""
    height, width = size

    def every_layer(image: torch.Tensor) -> torch.Tensor:  # the memory of a gradient through the whole cut
        return sum(act.float().pow(2).mean() for act in net(image).values())

    free = free_memory(device)
    per_pixel = bytes_per_pixel(every_layer, device) if free is not None else None
    if cfg.tile.size == "auto" and not transforms_of(cfg):
        side = tile_side(free, per_pixel, device, cfg.model.min_size)
        if side is not None and max(height, width) > side:
            return 0
    if free is None:
        return MAX_BATCH
    return max(1, min(MAX_BATCH, int(MEMORY_SHARE * free / (per_pixel * height * width))))


def as_seen(cfg: DreamConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """An image as the network sees it through cfg's transforms (one draw of their moves; only the size and
    the kind of content matter here)."""
    moves = torch.Generator().manual_seed(0)

    def seen(image: torch.Tensor) -> torch.Tensor:
        for transform in transforms_of(cfg):
            image = transform(image, moves)
        return image

    return seen


def batch_invariant(net: torch.nn.Module, cfg: DreamConfig, image: torch.Tensor, batch: int = 3) -> bool:
    """Whether image's activations and gradient come out bit for bit the same in a batch of this many as
    alone, here: at its size and at the smallest octave's, as the network sees them (through the transforms)."""
    smallest = octave_sizes(*image.shape[-2:], cfg.octaves, cfg.octave_scale)[0]
    seen = as_seen(cfg)
    for probe in (seen(resize(image, smallest)), seen(image)):  # the small one first: cheaper, and decisive
        others = torch.rand(batch - 1, *probe.shape[1:], generator=torch.Generator().manual_seed(0)).to(probe.device)
        alone, batched = _gradient(net, probe), _gradient(net, torch.cat([probe, others]))
        if not all(torch.equal(a, b[:1]) for a, b in zip(alone, batched)):
            return False
    return True


def _gradient(net: torch.nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The first image's activations at every cut layer, and the gradient of their sum of squares."""
    images = images.detach().requires_grad_(True)
    acts = [act[:1] for act in net(images).values()]
    (grad,) = torch.autograd.grad(sum(act.float().pow(2).mean() for act in acts), images)
    return [*(act.detach() for act in acts), grad[:1]]


def run_one(job: Job, kind: Optional[Callable[..., JobKind]] = None) -> None:
    """job on the skeleton, as kind (None: the kind its mode says), its outcome in job (and result.json)."""
    try:
        job.result = run_job((kind or job_kind(job.cfg.mode))(job.cfg, job.run_dir, progress=False),
                             overrides=job.overrides)
    except KeyboardInterrupt as e:
        job.error = e
    except DreamError as e:
        job.error = e
        log.error("dreamrun: error: %s", e)
    except Exception as e:  # a bug: run_job recorded it; keep its traceback in the log
        job.error = e
        log.exception("dreamrun: job failed")
