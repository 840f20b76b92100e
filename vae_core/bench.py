"""How fast is latent-lab, and against what? `python -m vae_core.bench --data-dir DIR` measures, in one run:

training (the project's `train` versus the pytorch/examples VAE recipe), the machine's matmul ceiling,
the projections on a Z=20 model's test means, and the app in a real browser. It prints a table, then
one JSON line with every number.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import appserver
from .backprop import PRECISIONS
from .data import Dataset, load_dataset
from .errors import DatasetNotFoundError, LatentLabError
from .model import VAE, VAEConfig

__all__ = ["BenchConfig", "model_flops_per_image", "step_matmul_shapes", "matmul_gflops", "run", "main"]

ROOT = Path(__file__).resolve().parent.parent
Z20_CHECKPOINT = ROOT / "models" / "mnist-vae-z20.safetensors"
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SEED = 1  # TrainConfig's default: same initial weights and shuffling seed for both recipes
CLASSIC_BATCH, CLASSIC_LR = 128, 1e-3  # pytorch/examples vae/main.py
QUICK_TRAIN, QUICK_POINTS = 2000, 200  # --quick (tests only): training images, latent points
TRUST_SUBSAMPLE, TRUST_K = 2000, 10  # trustworthiness on a fixed subsample: O(N^2) otherwise
BIG_MATMUL = 2048  # n of the n x n x n matmul that shows the machine's peak
MATMUL_SECONDS, MATMUL_TRIALS = 1.0, 5  # per trial; the best trial is the ceiling (others share the CPU)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SWITCH_REPEATS = 3  # back-and-forth switches between two computed projections, by each control
APP_TIMEOUT_S = 180  # a cold first t-SNE may have to be computed
CHART = '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg'
# Rendered: the caption naming the projection is shown, a chart is drawn, and no script run is going on.
RENDERED_JS = """([label, chart]) => document.body.innerText.includes('\u00b7 ' + label)
  && !!document.querySelector(chart) && !document.querySelector('[data-testid="stStatusWidget"]')"""
# The chart's canvas shrunk to 48 x 48, as a string: changes when the points are redrawn elsewhere.
PIXELS_JS = """() => { const c = document.querySelector('[data-testid="stVegaLiteChart"] canvas');
  if (!c) return ''; const s = document.createElement('canvas'); s.width = s.height = 48;
  const g = s.getContext('2d'); g.drawImage(c, 0, 0, 48, 48);
  return Array.from(g.getImageData(0, 0, 48, 48).data).join(','); }"""
TARGETS = {  # name -> (limit, "min" or "max"): what the project aims for
    "train_speedup_vs_classic": (3.0, "min"),
    "train_fraction_of_matmul_ceiling": (0.5, "min"),
    "test_loss_minus_classic": (0.5, "max"),  # nats/image: about the spread between two shuffling seeds
    "tsne_s": (15.0, "max"),
    "sklearn_over_opentsne_s": (3.0, "min"),
    "trust_gap_vs_sklearn": (0.02, "max"),
    "app_first_scatter_s": (5.0, "max"),
    "app_switch_s": (0.3, "max"),  # the buttons under the scatter (the sidebar's time is reported too)
}


@dataclass(frozen=True)
class BenchConfig:
    data_dir: Path  # MNIST's four IDX files, raw or .gz
    epochs: int = 3  # per recipe, in turn
    quick: bool = False  # QUICK_TRAIN images and QUICK_POINTS latents: for tests
    skip_app: bool = False
    skip_sklearn_tsne: bool = False  # about 50 s
    skip_umap: bool = False  # about 30 s of numba compiling


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def cpu_snapshot() -> tuple[float, float, float]:
    """(wall s, CPU s of this process and its waited-for children, busy CPU s of the whole machine)."""
    own = sum(
        getattr(resource.getrusage(who), field)
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for field in ("ru_utime", "ru_stime")
    )
    try:  # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        busy = float("nan")
    return time.perf_counter(), own, busy


def others_share(start: tuple[float, float, float], end: tuple[float, float, float]) -> float:
    """Share of the machine's CPU capacity other processes used between two snapshots: 0 means the
    timing is clean; 0.5 on two cores means another process held about one core throughout."""
    wall = max(end[0] - start[0], 1e-9)
    return max(0.0, ((end[2] - start[2]) - (end[1] - start[1])) / (wall * (os.cpu_count() or 1)))


def _measured(fn: Callable[..., Any], *args: Any) -> tuple[Any, dict]:
    start = cpu_snapshot()
    out = fn(*args)
    end = cpu_snapshot()
    return out, {"s": end[0] - start[0], "others_cpu": others_share(start, end)}


def machine_info() -> dict:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.processor())
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or "unknown",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "omp_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")},
        "loadavg_1min": os.getloadavg()[0],  # other processes sharing the CPUs make every timing slower
    }


# --- training ---------------------------------------------------------------------------------------


def torchvision_root(data_dir: Path, root: Path) -> Path:
    """Put the IDX files, uncompressed, in root/MNIST/raw/: where torchvision's MNIST class looks."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        plain, packed = data_dir / name, data_dir / (name + ".gz")
        if plain.is_file():
            (raw / name).symlink_to(plain.resolve())
        elif packed.is_file():
            with gzip.open(packed, "rb") as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            raise DatasetNotFoundError(f"{data_dir} lacks {name} (raw or .gz); pass --data-dir with MNIST's IDX files")
    return root


def classic_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """pytorch/examples vae/main.py's loss_function: summed BCE on probabilities plus the KL term."""
    bce = F.binary_cross_entropy(recon.view(-1, 784), x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


@dataclass
class Trained:
    """One recipe's run: the model and, per epoch, seconds, mean training loss and the CPU share
    other processes took meanwhile (see others_share)."""

    model: VAE
    load_s: float
    epoch_s: list[float]
    train_loss: list[float]
    others_cpu: list[float]


class ClassicRecipe:
    """The classic recipe, one epoch per call: MNIST class + ToTensor (one PIL image at a time) +
    DataLoader + Adam, as in pytorch/examples vae/main.py."""

    def __init__(self, root: Path, limit: int | None) -> None:
        from torch.utils.data import DataLoader, Subset
        from torchvision import datasets, transforms

        to_tensor = transforms.ToTensor()
        data, load_s = _timed(datasets.MNIST, str(root), train=True, download=False, transform=to_tensor)
        self.data = Subset(data, range(limit)) if limit else data
        torch.manual_seed(SEED)
        self.model = VAE(VAEConfig())
        self.loader = DataLoader(self.data, batch_size=CLASSIC_BATCH, shuffle=True)  # num_workers 0 on CPU, as there
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=CLASSIC_LR)
        self.run = Trained(self.model, load_s, [], [], [])  # filled in by epoch()

    def epoch(self) -> None:
        model, optimizer = self.model, self.optimizer
        t0, total, snap = time.perf_counter(), 0.0, cpu_snapshot()
        model.train()
        for x, _ in self.loader:
            optimizer.zero_grad()
            recon, mu, logvar = model(x)
            loss = classic_loss(recon, x, mu, logvar)
            loss.backward()
            total += loss.item()
            optimizer.step()
        self.run.epoch_s.append(time.perf_counter() - t0)
        self.run.train_loss.append(total / len(self.data))
        self.run.others_cpu.append(others_share(snap, cpu_snapshot()))
        model.eval()


def train_project(data_dir: Path, epochs: int, limit: int | None, between: Callable[[], None] | None = None) -> Trained:
    """The project's train(); between() runs after each epoch, outside its timing."""
    from .train import TrainConfig, train

    train_set, load_s = _timed(load_dataset, "mnist", "train", data_dir)
    if limit:
        train_set = Dataset(train_set.name, train_set.images[:limit], train_set.labels[:limit], train_set.class_names)
    torch.manual_seed(SEED)
    model = VAE(VAEConfig())
    spans: list[tuple] = []
    snap = [cpu_snapshot()]

    def end_epoch(_record: dict) -> None:
        spans.append((snap[0], cpu_snapshot()))
        if between:
            between()
        snap[0] = cpu_snapshot()

    config = TrainConfig(epochs=epochs, seed=SEED, precision=training_precision())
    history = train(model, train_set, None, config, on_epoch_end=end_epoch)
    others = [others_share(a, b) for a, b in spans]
    return Trained(model, load_s, [h["seconds"] for h in history], [h["train_loss"] for h in history], others)


def _recipe_record(run: Trained, n: int, x_test: torch.Tensor) -> dict:
    from .train import evaluate

    return {
        "load_s": run.load_s,
        "epoch_s": run.epoch_s,
        "train_loss": run.train_loss,
        "others_cpu": run.others_cpu,
        "samples_per_s": n * len(run.epoch_s) / sum(run.epoch_s),
        "best_epoch_samples_per_s": n / min(run.epoch_s),  # least disturbed by other processes
        "test": evaluate(run.model, x_test),
    }


def _one_thread(data_dir: Path, limit: int | None) -> dict:
    """The project's train() on one torch thread, one epoch: on a shared machine, idle OpenMP threads
    that spin while their core is taken by another process can make two threads slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = train_project(data_dir, 1, limit)
    finally:
        torch.set_num_threads(before)
    return {"epoch_s": run.epoch_s, "others_cpu": run.others_cpu, "samples_per_s": (limit or 60000) / run.epoch_s[0]}


def training_precision() -> str:
    """The precision the project's training uses here: "auto" (the CLI's and the page's default), resolved."""
    from .train import pick_precision

    return pick_precision("auto", "cpu")


def bench_training(cfg: BenchConfig, tmp: Path) -> dict:
    limit = QUICK_TRAIN if cfg.quick else None
    x_test = load_dataset("mnist", "test", cfg.data_dir).as_float()
    n = limit or 60000
    classic_recipe = ClassicRecipe(torchvision_root(cfg.data_dir, tmp / "tv"), limit)
    # Side by side: one epoch of each in turn, so a slow spell of a shared machine (seconds long
    # here) falls on both recipes alike rather than on one of them.
    _log("training: the project's train() and the classic recipe (torchvision MNIST + DataLoader), epochs in turn")
    # The matmul ceiling is sampled between epochs too: a slow spell during bench_matmul's own trials
    # alone would otherwise understate it (one run measured 95 GFLOP/s there, 150 is typical).
    shapes, seconds = step_matmul_shapes(VAE(VAEConfig()), CLASSIC_BATCH), 0.1 if cfg.quick else MATMUL_SECONDS
    ceiling_samples: list[float] = []
    precision = training_precision()
    dtype = PRECISIONS[precision]

    def between() -> None:
        classic_recipe.epoch()
        ceiling_samples.append(matmul_gflops(shapes, seconds, dtype=dtype))

    project = _recipe_record(train_project(cfg.data_dir, cfg.epochs, limit, between), n, x_test)
    classic = _recipe_record(classic_recipe.run, n, x_test)
    _log("training: the project's train() on one thread")
    one_thread = _one_thread(cfg.data_dir, limit)
    return {
        "n_train": n,
        "epochs": cfg.epochs,
        "precision": precision,
        "project": project,
        "classic": classic,
        "project_1_thread": one_thread,
        "step_shapes_gflops_between_epochs": ceiling_samples,
        "speedup": project["samples_per_s"] / classic["samples_per_s"],
        "speedup_best_epoch": project["best_epoch_samples_per_s"] / classic["best_epoch_samples_per_s"],
        "test_loss_minus_classic": project["test"]["loss"] - classic["test"]["loss"],
    }


# --- matmul ceiling ---------------------------------------------------------------------------------


def model_flops_per_image(model: nn.Module, training: bool = True) -> int:
    """Multiply-adds (x2) of every Linear layer. Training: the forward pass, every weight gradient, and
    every input gradient but the first layer's (nothing needs d(image); the step does not compute it)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    forward = sum(2 * m.in_features * m.out_features for m in linears)
    return 3 * forward - 2 * linears[0].in_features * linears[0].out_features if training else forward


def step_matmul_shapes(model: nn.Module, batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of each matmul in one training step: forward, input gradient, weight gradient."""
    shapes = []
    for k, lin in enumerate(m for m in model.modules() if isinstance(m, nn.Linear)):
        i, o = lin.in_features, lin.out_features
        shapes += [(batch, i, o), (o, batch, i)] + ([(batch, o, i)] if k else [])  # no d(image) for the first
    return shapes


def matmul_gflops(
    shapes: list[tuple[int, int, int]], seconds: float, trials: int = 1, dtype: torch.dtype = torch.float32
) -> float:
    """Best GFLOP/s of running these torch.mm calls in turn, each trial for at least `seconds`."""
    gen = torch.Generator().manual_seed(0)
    ops = [
        (
            torch.randn(m, k, generator=gen).to(dtype),
            torch.randn(k, n, generator=gen).to(dtype),
            torch.empty(m, n, dtype=dtype),
        )
        for m, k, n in shapes
    ]
    flops = sum(2 * m * k * n for m, k, n in shapes)
    best = 0.0
    for _ in range(trials):
        for a, b, c in ops:  # warm-up
            torch.mm(a, b, out=c)
        reps, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds or reps == 0:
            for a, b, c in ops:
                torch.mm(a, b, out=c)
            reps += 1
        best = max(best, reps * flops / elapsed / 1e9)
    return best


def bench_matmul(cfg: BenchConfig, training: dict) -> dict:
    """The ceiling is the step's matmul shapes at the rate of the precision training multiplies in
    (bfloat16 runs about twice float32's rate on a CPU that has it); float32's rate is kept beside it."""
    _log("matmul ceiling")
    model = VAE(VAEConfig())
    seconds, trials, n = (0.1, 1, BIG_MATMUL // 4) if cfg.quick else (MATMUL_SECONDS, MATMUL_TRIALS, BIG_MATMUL)
    precision = training.get("precision", "fp32")
    shapes = step_matmul_shapes(model, CLASSIC_BATCH)
    step, timing = _measured(matmul_gflops, shapes, seconds, trials, PRECISIONS[precision])
    step = max([step, *training.get("step_shapes_gflops_between_epochs", [])])  # the best seen in the run
    fp32 = step if precision == "fp32" else matmul_gflops(shapes, seconds, trials)
    big = matmul_gflops([(n, n, n)], seconds, trials)
    flops = model_flops_per_image(model)
    achieved = training["project"]["samples_per_s"] * flops / 1e9
    return {
        "flops_per_train_image": flops,
        "precision": precision,
        "others_cpu": timing["others_cpu"],
        "step_shapes_gflops": step,
        "step_shapes_gflops_fp32": fp32,
        "big_matmul_n": n,
        "big_matmul_gflops": big,
        "ceiling_epoch_s_step_shapes": 60000 * flops / (step * 1e9),
        "ceiling_epoch_s_big": 60000 * flops / (big * 1e9),
        "project_gflops": achieved,
        "project_fraction_of_step_ceiling": achieved / step,
        "project_fraction_of_fp32_step_ceiling": achieved / fp32,
        "project_fraction_of_big_ceiling": achieved / big,  # big is float32's rate, whatever the precision
    }


# --- projections ------------------------------------------------------------------------------------

UMAP_SCRIPT = """
import json, sys, time
import numpy as np
from vae_core.projection import fit_projection
mu = np.load(sys.argv[1])
t0 = time.perf_counter()
first = fit_projection(mu, "umap")
t1 = time.perf_counter()
fit_projection(mu, "umap")
t2 = time.perf_counter()
np.save(sys.argv[2], first.embedding)
print(json.dumps({"first_s": t1 - t0, "second_s": t2 - t1, "params": first.params}))
"""


def latent_means(data_dir: Path, n: int | None) -> np.ndarray:
    """The Z=20 bundled model's latent means of the MNIST test split, (N, 20)."""
    from .checkpoint import load_checkpoint
    from .latents import encode_dataset

    model, _ = load_checkpoint(Z20_CHECKPOINT)
    mu, _ = encode_dataset(model, load_dataset("mnist", "test", data_dir))
    return mu[:n].numpy() if n else mu.numpy()


def umap_in_new_process(mu: np.ndarray, tmp: Path) -> dict:
    """First and second UMAP call in a fresh interpreter with an empty numba cache: the real cold start."""
    np.save(tmp / "mu.npy", mu)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp / "numba")}
    cmd = [sys.executable, "-c", UMAP_SCRIPT, str(tmp / "mu.npy"), str(tmp / "umap.npy")]
    proc, timing = _measured(lambda: subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True))
    if proc.returncode != 0:
        raise RuntimeError(f"the UMAP subprocess failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        **result,
        "process_wall_s": timing["s"],
        "others_cpu": timing["others_cpu"],
        "embedding": np.load(tmp / "umap.npy"),
    }


def _trust(mu: np.ndarray, emb: np.ndarray, idx: np.ndarray) -> float:
    from sklearn.manifold import trustworthiness

    return float(trustworthiness(mu[idx], emb[idx], n_neighbors=TRUST_K))


def _sklearn_tsne(mu: np.ndarray) -> tuple[np.ndarray, dict]:
    from sklearn.manifold import TSNE

    tsne = TSNE(random_state=0)
    params = {k: v for k, v in tsne.get_params().items() if k in ("perplexity", "max_iter", "method", "init")}
    return tsne.fit_transform(mu), params


def _import_projection_libraries() -> None:
    import openTSNE  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    import sklearn.manifold  # noqa: F401


def bench_projections(cfg: BenchConfig, tmp: Path) -> dict:
    from .projection import fit_projection

    mu = latent_means(cfg.data_dir, QUICK_POINTS if cfg.quick else None)
    idx = np.sort(np.random.default_rng(0).choice(len(mu), min(TRUST_SUBSAMPLE, len(mu)), replace=False))
    out: dict[str, Any] = {"n_points": len(mu), "latent_dim": mu.shape[1], "trust_subsample": len(idx)}
    out["import_s"] = _timed(_import_projection_libraries)[1]  # once per process; not in the timings below
    for method in ("pca", "tsne"):
        _log(f"projection: {method}")
        proj, timing = _measured(fit_projection, mu, method)
        out[method] = {**timing, "params": proj.params, "trust": _trust(mu, proj.embedding, idx)}
    if not cfg.skip_sklearn_tsne:
        _log("projection: scikit-learn TSNE")
        (emb, params), timing = _measured(_sklearn_tsne, mu)
        out["sklearn_tsne"] = {**timing, "params": params, "trust": _trust(mu, emb, idx)}
    if not cfg.skip_umap:
        _log("projection: UMAP in a new process")
        umap = _keep_going(umap_in_new_process, mu, tmp)
        if "embedding" in umap:
            umap["trust"] = _trust(mu, umap.pop("embedding"), idx)
        out["umap"] = umap
    return out


# --- the app in a browser ---------------------------------------------------------------------------

APP_LABELS = {"raw": "raw (two latent dims)", "tsne": "t-SNE"}  # as ui/state.PROJECTION_LABELS shows them


def rss_mb(pid: int) -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak (VmHWM) from /proc, in MiB."""
    fields = dict(ln.split(":", 1) for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in ln)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}


def _wait_rendered(tab: Any, method: str) -> None:
    tab.wait_for_function(RENDERED_JS, arg=[APP_LABELS[method], CHART], timeout=APP_TIMEOUT_S * 1000)


def _open(tab: Any, url: str, method: str) -> float:
    t0 = time.perf_counter()
    tab.goto(f"{url}/latent?projection={method}")
    _wait_rendered(tab, method)
    return time.perf_counter() - t0


# In the page: from the next click (the event's own time) to the first animation frame in which the
# chart's pixels differ, and, given a label, the page also says it and no script run is going on. This
# is the delay the user sees; the bench also keeps the wall time of the driver's click-and-wait, which
# adds the driver's own round trips and polling (0.05-0.2 s here).
CLICK_CLOCK_JS = """([pixels, rendered, args]) => {
  const drawn = eval('(' + pixels + ')'), done = rendered ? eval('(' + rendered + ')') : null;
  const before = drawn(); window.__switchMs = null;
  document.addEventListener('click', (event) => {
    const t0 = event.timeStamp;
    const tick = () => {
      if (drawn() !== before && (!done || done(args))) window.__switchMs = performance.now() - t0;
      else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }, {capture: true, once: true});
}"""


def _steady(tab: Any, gap_s: float = 0.3, tries: int = 20) -> None:
    """Until the chart's pixels stay the same for gap_s: a rebuild still under way after the previous
    switch must not be taken for this one's redraw."""
    now = tab.evaluate(PIXELS_JS)
    for _ in range(tries):
        time.sleep(gap_s)
        now, before = tab.evaluate(PIXELS_JS), now
        if now == before:
            return


def _clocked_click(tab: Any, target: Any, label: str | None) -> tuple[float, float]:
    """Click target; (seconds on the page's clock, wall seconds of the driver) until it is redrawn."""
    _steady(tab)
    tab.evaluate(CLICK_CLOCK_JS, [PIXELS_JS, RENDERED_JS if label else None, [label, CHART]])
    t0 = time.perf_counter()
    target.click()
    tab.wait_for_function("() => window.__switchMs !== null", timeout=APP_TIMEOUT_S * 1000)
    return tab.evaluate("() => window.__switchMs") / 1000, time.perf_counter() - t0


def _pick(tab: Any, method: str) -> tuple[float, float]:
    """Choose the projection in the sidebar, as a user would: one rerun in the same session. Done when
    the chart's pixels differ from before and the page's caption names the projection."""
    tab.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1).click()
    return _clocked_click(tab, tab.get_by_role("option", name=APP_LABELS[method], exact=True), APP_LABELS[method])


def _flip(tab: Any, method: str) -> tuple[float, float, float]:
    """Choose the projection with the buttons under the scatter: (page clock and wall seconds until the
    chart's pixels change, wall seconds until the rerun that follows has put it in the caption too)."""
    t0 = time.perf_counter()
    button = tab.locator('[data-testid="stVegaLiteChart"]').get_by_label(APP_LABELS[method], exact=True)
    page_s, wall_s = _clocked_click(tab, button, None)
    _wait_rendered(tab, method)
    return page_s, wall_s, time.perf_counter() - t0


def _app_session(tab: Any, proc: subprocess.Popen, url: str, t_start: float) -> dict:
    appserver.wait_healthy(url, proc, APP_TIMEOUT_S, poll_s=0.05)
    out: dict[str, Any] = {"healthy_s": time.perf_counter() - t_start, "rss_baseline_mb": rss_mb(proc.pid)}
    tab.goto(url + "/latent")
    _wait_rendered(tab, "raw")
    out["first_scatter_s"] = time.perf_counter() - t_start
    out["first_page_s"] = out["first_scatter_s"] - out["healthy_s"]
    out["first_url"] = tab.url
    out["first_tsne_s"] = _open(tab, url, "tsne")
    out["url_raw_s"] = _open(tab, url, "raw")
    out["url_switch_s"] = _open(tab, url, "tsne")  # t-SNE again: cached, a reload of the page
    # The switches a teacher makes, to projections already computed: the buttons under the scatter
    # (drawn in the browser), then the sidebar (a rerun and a new chart view). The median of several,
    # as one redraw can be delayed by anything on the machine.
    flips = [_flip(tab, method) for _ in range(SWITCH_REPEATS) for method in ("raw", "tsne")]
    out["button_switches_s"] = [page for page, _, _ in flips]
    out["button_switch_s"] = float(np.median(out["button_switches_s"]))
    out["button_switch_wall_s"] = float(np.median([wall for _, wall, _ in flips]))
    out["button_settled_wall_s"] = float(np.median([settled for _, _, settled in flips]))
    picks = [_pick(tab, method) for _ in range(SWITCH_REPEATS) for method in ("raw", "tsne")]
    out["widget_switches_s"] = [page for page, _ in picks]
    out["widget_switch_s"] = float(np.median(out["widget_switches_s"]))
    out["widget_switch_wall_s"] = float(np.median([wall for _, wall in picks]))
    out["rss_after_mb"] = rss_mb(proc.pid)
    return out


def bench_app(tmp: Path) -> dict:
    from playwright.sync_api import sync_playwright

    _log("app: streamlit + headless chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)  # before the clock starts
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            t_start = time.perf_counter()
            proc, url = appserver.start(tmp / "streamlit.log")
            try:
                return _app_session(tab, proc, url, t_start)
            finally:
                appserver.stop(proc)
        finally:
            browser.close()


# --- report -----------------------------------------------------------------------------------------


def target_values(result: dict) -> dict[str, float]:
    tr, mm, pr, app = (result.get(k) or {} for k in ("training", "matmul", "projections", "app"))
    values = {
        "train_speedup_vs_classic": tr.get("speedup"),
        "train_fraction_of_matmul_ceiling": mm.get("project_fraction_of_step_ceiling"),
        "test_loss_minus_classic": tr.get("test_loss_minus_classic"),
        "tsne_s": pr.get("tsne", {}).get("s"),
        "app_first_scatter_s": app.get("first_scatter_s"),
        "app_switch_s": app.get("button_switch_s"),
    }
    if "sklearn_tsne" in pr:
        values["sklearn_over_opentsne_s"] = pr["sklearn_tsne"]["s"] / pr["tsne"]["s"]
        values["trust_gap_vs_sklearn"] = pr["sklearn_tsne"]["trust"] - pr["tsne"]["trust"]
    return {k: v for k, v in values.items() if v is not None}


def check_targets(result: dict) -> dict[str, dict]:
    """Each measured target: its value, its limit, and whether it holds."""
    out = {}
    for name, value in target_values(result).items():
        limit, kind = TARGETS[name]
        ok = value >= limit if kind == "min" else value <= limit
        out[name] = {"value": value, "limit": limit, "kind": kind, "ok": ok}
    return out


def _others(shares: float | list[float]) -> str:
    """E.g. 'others 3%/41%': the CPU share other processes took during each timing."""
    shares = shares if isinstance(shares, list) else [shares]
    return "others " + "/".join(f"{s:.0%}" for s in shares)


def _training_rows(tr: dict) -> list[tuple[str, str]]:
    rows = []
    for name in ("project", "classic"):
        r = tr[name]
        epochs = " ".join(f"{s:.2f}" for s in r["epoch_s"])
        value = f"{r['samples_per_s']:7.0f} img/s; epochs {epochs} s; {_others(r['others_cpu'])}"
        label = f"train {name}" + (f" ({tr['precision']})" if name == "project" and "precision" in tr else "")
        rows.append((label, value))
        rows.append((f"  test loss {name}", f"{r['test']['loss']:.2f} nats/image"))
    one = tr["project_1_thread"]
    rows.append(("train project 1 thread", f"{one['samples_per_s']:7.0f} img/s; 1 epoch; {_others(one['others_cpu'])}"))
    speedups = f"{tr['speedup']:.2f}x (best epochs {tr['speedup_best_epoch']:.2f}x)"
    rows.append(("train speedup", f"{speedups} over the classic recipe, {tr['n_train']} images"))
    return rows


def _matmul_rows(mm: dict) -> list[tuple[str, str]]:
    precision = mm.get("precision", "fp32")
    rates = f"step shapes {mm['step_shapes_gflops']:.1f} in {precision}"
    if precision != "fp32":
        rates += f" ({mm['step_shapes_gflops_fp32']:.1f} in fp32)"
    rates += f", {mm['big_matmul_n']}^3 fp32 {mm['big_matmul_gflops']:.1f}"
    vs = f"{mm['project_fraction_of_step_ceiling']:.0%} ({mm['project_gflops']:.1f} GFLOP/s"
    vs += ")" if precision == "fp32" else f"; {mm['project_fraction_of_fp32_step_ceiling']:.0%} of the fp32 rate)"
    return [
        ("matmul GFLOP/s", f"{rates}, {_others(mm['others_cpu'])}"),
        ("epoch ceiling", f"{mm['ceiling_epoch_s_step_shapes']:.2f} s at the {precision} step-shape rate"),
        ("project vs ceiling", vs),
    ]


def _projection_rows(pr: dict) -> list[tuple[str, str]]:
    rows = []
    for method in ("pca", "tsne", "sklearn_tsne", "umap"):
        p = pr.get(method)
        if p and "error" in p:
            rows.append((method, p["error"][:100]))
        elif p:
            seconds = f"first {p['first_s']:.2f} s, second {p['second_s']:.2f}" if method == "umap" else f"{p['s']:.2f}"
            value = f"{seconds} s; trust {p['trust']:.4f}; {_others(p['others_cpu'])}"
            rows.append((f"{method} ({pr['n_points']} pts)", value))
    return rows


def _app_rows(app: dict) -> list[tuple[str, str]]:
    if "error" in app:
        return [("app", app["error"][:100])]
    rss = f"{app['rss_baseline_mb']['VmRSS']:.0f} MiB idle -> {app['rss_after_mb']['VmRSS']:.0f} MiB"
    return [
        ("app first scatter", f"{app['first_scatter_s']:.2f} s from start ({app['healthy_s']:.2f} s to healthy)"),
        ("app first t-SNE page", f"{app['first_tsne_s']:.2f} s"),
        (
            "app switch projection",
            f"buttons {app['button_switch_s']:.2f} s (driver {app['button_switch_wall_s']:.2f}, page caught up "
            f"{app['button_settled_wall_s']:.2f}); sidebar {app['widget_switch_s']:.2f} s (driver "
            f"{app['widget_switch_wall_s']:.2f}); medians of {len(app['button_switches_s'])}",
        ),
        ("app reopen by URL", f"{app['url_switch_s']:.2f} s (a new page load and session, for reference)"),
        ("app server RSS", rss),
    ]


def table_rows(result: dict) -> list[tuple[str, str]]:
    """(label, value) lines for people; the JSON line holds the same numbers and more."""
    rows = [("machine", "{cpu}, {nproc} CPUs, torch {torch} ({torch_threads} threads)".format(**result["machine"]))]
    load = f"{result['machine']['loadavg_1min']:.2f} at start, {result['loadavg_1min_end']:.2f} at end"
    rows.append(("load average", load))
    sections = {"training": _training_rows, "matmul": _matmul_rows, "projections": _projection_rows, "app": _app_rows}
    for key, rows_of in sections.items():
        if result.get(key):
            rows += rows_of(result[key])
    for name, t in result["targets"].items():
        sign = ">=" if t["kind"] == "min" else "<="
        rows.append((f"target {name}", f"{'ok  ' if t['ok'] else 'MISS'} {t['value']:.3f} {sign} {t['limit']}"))
    return rows


def print_report(result: dict) -> None:
    width = max(len(label) for label, _ in table_rows(result))
    for label, value in table_rows(result):
        print(f"{label:<{width}}  {value}")
    print(json.dumps(result))


def _keep_going(fn: Callable[..., dict], *args: Any) -> dict:
    """Run a section that drives another process (UMAP, the app); if it fails, record why and go on,
    so a missing browser does not throw away minutes of measurements already made."""
    try:
        return fn(*args)
    except Exception as exc:  # any failure of the other process or the browser is reported, not raised
        _log(f"{fn.__name__} failed: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}


def run(cfg: BenchConfig) -> dict:
    """Every measurement, as one JSON-ready dict."""
    result: dict[str, Any] = {"machine": machine_info(), "quick": cfg.quick}
    with tempfile.TemporaryDirectory(prefix="latent-lab-bench-") as tmp:
        tmp_path = Path(tmp)
        result["training"] = bench_training(cfg, tmp_path)
        result["matmul"] = bench_matmul(cfg, result["training"])
        result["projections"] = bench_projections(cfg, tmp_path)
        result["app"] = None if cfg.skip_app else _keep_going(bench_app, tmp_path)
    result["loadavg_1min_end"] = os.getloadavg()[0]
    result["targets"] = check_targets(result)
    return result


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vae_core.bench", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", required=True, type=Path, help="folder with MNIST's four IDX files (raw or .gz)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs for each recipe, in turn (default 3)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_TRAIN} training images, {QUICK_POINTS} latents")
    p.add_argument("--skip-app", action="store_true", help="no streamlit server, no browser")
    p.add_argument("--skip-sklearn-tsne", action="store_true", help="skip scikit-learn's TSNE (about 50 s)")
    p.add_argument("--skip-umap", action="store_true", help="skip UMAP in a new process (about 30 s of compiling)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not 1 <= args.epochs <= 100:
        parser.error("--epochs must be from 1 to 100")
    if not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} is not a folder")
    cfg = BenchConfig(args.data_dir, args.epochs, args.quick, args.skip_app, args.skip_sklearn_tsne, args.skip_umap)
    try:
        result = run(cfg)
    except LatentLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_report(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
