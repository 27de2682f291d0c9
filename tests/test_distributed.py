"""Training in two processes with torch.distributed (gloo on the CPU): DistributedDataParallel
keeps the ranks identical, averages their gradients, and ``gnnkit train`` runs under torchrun.

The processes talk over a free loopback port and train a bounded number of steps."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from gnnkit import distributed
from gnnkit.data.datasets import load_dataset, normalize_rows
from gnnkit.graph import Graph
from gnnkit.models import build_model
from gnnkit.sampling import NeighborLoader
from gnnkit.train import train_node_classifier

ROOT = Path(__file__).resolve().parents[1]
BATCH = 3  # seeds per rank and step

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _join(rank: int, world_size: int, port: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size)


def _first_step_gradients(model_name: str, world_size: int, batch_size: int) -> dict:
    """Gradients of the first mini-batch step (DDP-averaged across ranks): dropout off and
    every neighbour taken, so nothing is random but the batch order."""
    karate = load_dataset("karate")
    graph = Graph(karate.edge_index, karate.num_nodes)
    torch.manual_seed(0)
    model = build_model(model_name, 34, 2, dropout=0.0)
    trained = distributed.wrap(model)
    loader = NeighborLoader(graph, normalize_rows(karate.x), karate.y, None, [-1, -1],
                            batch_size, seed=5, rank=distributed.rank(), world_size=world_size)
    batch = next(iter(loader))
    graphs = [batch.trim(layer, 2) for layer in range(2)]
    loss = F.cross_entropy(trained(batch.x, graphs)[: batch.batch_size], batch.y)
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def _worker(rank: int, port: int, folder: str) -> None:
    """One rank of the two: first-step gradients, split inference and a short training run,
    each saved to ``folder`` for the tests to compare."""
    _join(rank, 2, port)
    try:
        saved = {name: _first_step_gradients(name, 2, BATCH) for name in ("mean-gcn", "gat")}
        karate = load_dataset("karate")
        torch.manual_seed(0)
        model = build_model("gat", 34, 2).eval()
        graph = Graph(karate.edge_index, karate.num_nodes)
        saved["inference"] = model.inference(karate.x, graph, 5, rank=rank, world_size=2)
        saved["inference state"] = model.state_dict()
        result = train_node_classifier(
            karate, "gat", epochs=4, seed=1, patience=0, batch_size=2, fanouts=(3, 2),
            chunk_size=5, progress=False,
        )
        saved["trained"] = {"state": result.model.state_dict(), "history": result.history,
                            "test": result.test_accuracy}
        torch.save(saved, Path(folder) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of two gloo processes computed: [rank 0's, rank 1's]."""
    folder = tmp_path_factory.mktemp("ranks")
    mp.spawn(_worker, args=(free_port(), str(folder)), nprocs=2)
    return [torch.load(folder / f"rank{rank}.pt") for rank in range(2)]


@pytest.mark.parametrize("model_name", ["mean-gcn", "gat"])
def test_two_ranks_of_batch_b_give_the_gradient_of_one_rank_of_batch_2b(model_name, ranks):
    rank0, rank1 = ranks[0][model_name], ranks[1][model_name]
    # The loader deals each epoch's order out to the ranks in turn, so step 1 of the two
    # ranks together covers the same 2B seeds as step 1 of a single rank with batch 2B.
    alone = _first_step_gradients(model_name, 1, 2 * BATCH)
    assert rank0.keys() == alone.keys()
    for name in alone:
        assert torch.equal(rank0[name], rank1[name]), name  # all-reduced: the same everywhere
        torch.testing.assert_close(rank0[name], alone[name], rtol=1e-5, atol=1e-6)


def test_ranks_train_identical_parameters_and_agree_on_the_metrics(ranks):
    rank0, rank1 = ranks[0]["trained"], ranks[1]["trained"]
    for name, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][name]), name
    assert rank0["history"] == rank1["history"] and len(rank0["history"]) == 4
    assert rank0["test"] == rank1["test"]


def test_layerwise_inference_split_over_ranks_is_exact(ranks):
    assert torch.equal(ranks[0]["inference"], ranks[1]["inference"])
    karate = load_dataset("karate")
    model = build_model("gat", 34, 2).eval()
    model.load_state_dict(ranks[0]["inference state"])
    with torch.no_grad():
        expected = model(karate.x, karate.edge_index)
    torch.testing.assert_close(ranks[0]["inference"], expected, rtol=1e-5, atol=1e-6)


def _torchrun(*argv: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items()
           if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *argv]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300, check=False)


def test_gnnkit_train_under_torchrun(tmp_path):
    result = _torchrun("-m", "gnnkit", "train", "--model", "gat", "--batch-size", "2",
                       "--fanouts", "5,5", "--seeds", "2", "--epochs", "5", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2 processes (DistributedDataParallel)" in out
    assert out.count("test accuracy:") == 1  # rank 0 prints, rank 1 does not
    assert "seed 0: test accuracy" in out and "seed 1: test accuracy" in out


def test_gnnkit_train_under_torchrun_needs_a_batch_size(tmp_path):
    result = _torchrun("-m", "gnnkit", "train", "--seeds", "1", tmp_path=tmp_path)
    assert result.returncode != 0  # torchrun reports the failed ranks in its own words
    assert result.stderr.count("gnnkit train: error: training in several processes needs "
                               "batch_size") == 1  # rank 0 only


def test_argparse_and_device_errors_print_once_under_torchrun(tmp_path):
    result = _torchrun("-m", "gnnkit", "train", "--model", "transformer", tmp_path=tmp_path)
    assert result.returncode != 0 and result.stderr.count("invalid choice") == 1
    if not torch.cuda.is_available():
        result = _torchrun("-m", "gnnkit", "train", "--device", "cuda", "--batch-size", "4",
                           tmp_path=tmp_path)
        assert result.returncode != 0
        assert result.stderr.count("gnnkit train: error: --device 'cuda'") == 1
        assert result.stderr.count("Traceback") <= 1  # torchrun's own ChildFailedError only


def test_a_slow_rank_0_still_reports_the_shared_error(tmp_path):
    """torchrun stops the group at the first process that exits: the quiet rank waits, so a
    rank 0 that is slower to get there is not stopped before it prints."""
    script = tmp_path / "slow_rank_0.py"
    script.write_text("import os, sys, time\n"
                      "if os.environ['RANK'] == '0':\n"
                      "    time.sleep(2)\n"
                      "from gnnkit.cli import main\n"
                      "sys.exit(main(sys.argv[1:]))\n")
    result = _torchrun(str(script), "train", "--batch-size", "4", "--epochs", "0",
                       tmp_path=tmp_path)
    assert result.returncode != 0
    assert result.stderr.count("gnnkit train: error: --epochs must be") == 1, result.stderr


def _stall(rank: int, port: int, folder: str) -> None:
    """Rank 1 stalls for 20 s; rank 0 waits in an all-reduce with a 2 s timeout."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    start = time.monotonic()
    try:
        with distributed.process_group("cpu", timeout=2):
            if rank == 1:
                time.sleep(20)
            distributed.mean_over_ranks(1.0)
        outcome = "finished"
    except distributed.ProcessGroupError as error:
        outcome = f"{time.monotonic() - start:.1f} {error}"
    except RuntimeError as error:  # rank 1, whose peer is gone, may fail while joining
        outcome = f"RuntimeError {error}"
    (Path(folder) / f"rank{rank}.txt").write_text(outcome)


def test_a_stalled_process_stops_the_others_after_the_timeout(tmp_path):
    mp.spawn(_stall, args=(free_port(), str(tmp_path)), nprocs=2)
    seconds, message = (tmp_path / "rank0.txt").read_text().split(" ", 1)
    assert float(seconds) < 15, message  # not the 20 s stall: the 2 s timeout
    assert message.startswith("process 0 of 2 stopped: RuntimeError: ")
    assert "the 2 s timeout" in message


def test_process_group_timeout_is_checked():
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timeout must be"), \
                distributed.process_group("cpu", timeout=bad):
            pass
