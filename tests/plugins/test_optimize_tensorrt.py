"""TensorRT engines (mlspec_optimize.tensorrt): profiles, machine probing and drift anywhere; builds on a GPU.

The pure parts run everywhere: profile shapes, drift messages, nvidia-smi parsing (a fake `nvidia-smi`
first on PATH), the build's flags, profiles and timing cache against a stand-in `tensorrt` module. The
tests marked `gpu` build and run real engines and are skipped unless `machine().missing()` is None; run
them on a GPU machine with `python -m pytest -m gpu tests/plugins/test_optimize_tensorrt.py`.
"""

from __future__ import annotations

import enum
import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from mlspec_optimize import tensorrt as backend
from mlspec_optimize.tensorrt import BuildFailed, Machine, Shape, drift, machine, profile_shapes

H100 = "NVIDIA H100 80GB HBM3"
SMI_HEADER = """Mon Dec  1 12:00:00 2025
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+
"""


@pytest.fixture(autouse=True)
def _fresh_machine() -> Iterator[None]:
    """machine() is cached per process; each test probes its own (faked) machine."""
    machine.cache_clear()
    yield
    machine.cache_clear()


# --- profile shapes -------------------------------------------------------------------------------------------


def test_batch_dims_take_the_batch_range_and_fixed_dims_stay() -> None:
    shapes = profile_shapes([("features", ("batch", 8))], (1, 8, 32), None)
    assert shapes == {"features": Shape(min=(1, 8), opt=(8, 8), max=(32, 8))}


def test_text_inputs_take_batch_and_sequence_ranges() -> None:
    dims: tuple[int | str, ...] = ("batch", "sequence")
    shapes = profile_shapes([("input_ids", dims), ("attention_mask", dims)], (1, 4, 16), (8, 128, 512))
    assert shapes["input_ids"] == shapes["attention_mask"] == Shape(min=(1, 8), opt=(4, 128), max=(16, 512))


def test_a_static_input_has_one_shape() -> None:
    assert profile_shapes([("image", (1, 3, 224, 224))], (1, 1, 1), None)["image"] == Shape(
        (1, 3, 224, 224), (1, 3, 224, 224), (1, 3, 224, 224))


@pytest.mark.parametrize(("dims", "sequence", "message"), [
    (("batch", "sequence"), None, "'sequence' dimension but no sequence range"),
    (("batch", "height"), (1, 2, 3), "dynamic dimension 'height'"),
    ((-1, 8), None, "unnamed dynamic dimension"),
])
def test_dims_without_a_range_are_refused(dims: tuple[int | str, ...], sequence: tuple[int, int, int] | None,
                                          message: str) -> None:
    with pytest.raises(ValueError, match=message):
        profile_shapes([("x", dims)], (1, 2, 4), sequence)


@pytest.mark.parametrize("batch", [(4, 2, 8), (0, 1, 2), (1, 9, 8)])
def test_a_range_must_be_ordered_and_positive(batch: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match="1 <= min <= opt <= max"):
        profile_shapes([("x", ("batch",))], batch, None)


# --- drift ----------------------------------------------------------------------------------------------------

NOW = Machine(tensorrt="11.4.0", gpu=H100, compute_capability="9.0", cuda="12.4", platform="linux-x86_64")


def test_the_same_machine_has_not_drifted() -> None:
    assert drift(NOW.to_json(), NOW) is None


@pytest.mark.parametrize(("key", "was", "message"), [
    ("gpu", "NVIDIA A100-SXM4-80GB", f"GPU changed (NVIDIA A100-SXM4-80GB -> {H100})"),
    ("tensorrt", "10.3.0", "TensorRT changed (10.3.0 -> 11.4.0)"),
    ("compute_capability", "8.0", "compute capability changed (8.0 -> 9.0)"),
    ("cuda", "12.2", "CUDA changed (12.2 -> 12.4)"),
    ("platform", "linux-aarch64", "platform changed (linux-aarch64 -> linux-x86_64)"),
])
def test_each_change_is_named(key: str, was: str, message: str) -> None:
    assert drift({**NOW.to_json(), key: was}, NOW) == message


def test_several_changes_are_joined_and_absent_values_shown() -> None:
    recorded = {**NOW.to_json(), "gpu": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0", "tensorrt": None}
    assert drift(recorded, NOW) == (f"TensorRT changed (none -> 11.4.0); GPU changed (NVIDIA A100-SXM4-80GB -> {H100}); "
                                    "compute capability changed (8.0 -> 9.0)")


def test_only_recorded_keys_are_compared() -> None:
    assert drift({"gpu": H100}, NOW) is None
    assert drift({"gpu": H100, "cuda": "12.2", "unknown": "x"}, NOW) == "CUDA changed (12.2 -> 12.4)"


# --- machine --------------------------------------------------------------------------------------------------


def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str, header: str = SMI_HEADER,
                    code: int = 0) -> Path:
    """Put an `nvidia-smi` first on PATH that answers the GPU query and the plain call; returns its call log."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    script = bin_dir / "nvidia-smi"
    script.write_text(f"""#!/bin/sh
echo "$*" >> '{calls}'
if [ "$1" = "--query-gpu=name,compute_cap" ]; then
cat <<'EOF'
{query}EOF
else
cat <<'EOF'
{header}EOF
fi
exit {code}
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return calls


def fake_tensorrt_version(monkeypatch: pytest.MonkeyPatch, installed: dict[str, str]) -> None:
    real = importlib.metadata.version

    def version(name: str) -> str:
        if name in backend.TRT_PACKAGES:
            if name in installed:
                return installed[name]
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)


def test_nvidia_smi_output_is_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_nvidia_smi(tmp_path, monkeypatch, f"{H100}, 9.0\nNVIDIA A100-SXM4-80GB, 8.0\n")
    fake_tensorrt_version(monkeypatch, {"tensorrt_cu12": "10.3.0"})
    found = machine()
    assert found == Machine(tensorrt="10.3.0", gpu=H100, compute_capability="9.0", cuda="12.4",
                            platform=f"{sys.platform}-{platform.machine()}")
    assert found.missing() is None
    assert found.to_json() == {"tensorrt": "10.3.0", "gpu": H100, "compute_capability": "9.0", "cuda": "12.4",
                               "platform": found.platform}
    assert machine() is found  # cached: one probe per process
    assert calls.read_text().splitlines() == ["--query-gpu=name,compute_cap --format=csv,noheader", ""]


def test_a_gpu_without_tensorrt_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, f"{H100}, 9.0\n")
    fake_tensorrt_version(monkeypatch, {})
    found = machine()
    assert found.gpu == H100 and found.tensorrt is None
    assert found.missing() == "TensorRT is not installed (pip install tensorrt)"


def test_no_nvidia_smi_means_no_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    found = machine()
    assert (found.gpu, found.compute_capability, found.cuda) == (None, None, None)
    assert found.missing() == "no NVIDIA GPU is visible (nvidia-smi found none)"


@pytest.mark.parametrize(("query", "code"), [
    ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", 9),
    ("No devices were found\n", 6),
    ("", 0),
    (f"{H100}, [N/A]\n", 0),
])
def test_a_failing_nvidia_smi_means_no_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str,
                                           code: int) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, query, code=code)
    found = machine()
    assert found.gpu is None and found.cuda is None
    assert found.missing() == backend.NO_GPU


def test_this_machine_without_a_gpu_says_so() -> None:
    if subprocess.run(["sh", "-c", "command -v nvidia-smi"], capture_output=True, check=False).returncode == 0:
        pytest.skip("nvidia-smi is installed here")
    assert machine().gpu is None and machine().missing() == backend.NO_GPU


def test_importing_the_module_imports_neither_tensorrt_nor_torch() -> None:
    plugins = Path(backend.__file__).resolve().parents[1]
    code = ("import sys, mlspec_optimize.tensorrt as t; t.machine(); "
            "print(sorted(m for m in ('tensorrt', 'torch') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                          timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


# --- build, against a stand-in tensorrt module ------------------------------------------------------------------


class Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


def flags(members: list[str]) -> SimpleNamespace:
    """A NetworkDefinitionCreationFlag with these members, numbered like TensorRT's (EXPLICIT_BATCH 0, STRONGLY_TYPED 1)."""
    return SimpleNamespace(**{name: index for index, name in enumerate(members)})


class FakeTrt:
    """The slice of the tensorrt module `build` uses, recording what it was asked to do."""

    def __init__(self, version: str) -> None:
        self.__version__ = version
        self.flags: int | None = None
        self.built: list[Any] = []
        self.fail_build = False
        self.parse_errors: list[Any] = []
        self.inputs = [SimpleNamespace(name="features", shape=(-1, 8))]
        names = ["STRONGLY_TYPED"] if version.startswith("11") else ["EXPLICIT_BATCH", "STRONGLY_TYPED"]
        self.NetworkDefinitionCreationFlag = flags(names)
        self.MemoryPoolType = SimpleNamespace(WORKSPACE="workspace")
        fake = self

        class ILogger:
            Severity = Severity

            def __init__(self) -> None:
                pass

        class Builder:
            def __init__(self, logger: Any) -> None:
                self.logger = logger

            def create_network(self, flags: int) -> Any:
                fake.flags = flags
                return SimpleNamespace(num_inputs=len(fake.inputs), get_input=lambda i: fake.inputs[i])

            def create_builder_config(self) -> Any:
                return FakeConfig()

            def create_optimization_profile(self) -> Any:
                return FakeProfile()

            def build_serialized_network(self, network: Any, config: FakeConfig) -> bytes | None:
                fake.built.append(config)
                self.logger.log(Severity.INFO, "tactic timing")
                if fake.fail_build:
                    self.logger.log(Severity.ERROR, "out of workspace for tactic 7")
                    return None
                self.logger.log(Severity.WARNING, "weights are not aligned")
                return b"plan"

        class OnnxParser:
            def __init__(self, network: Any, logger: Any) -> None:
                self.num_errors = len(fake.parse_errors)

            def parse_from_file(self, path: str) -> bool:
                return not fake.parse_errors

            def get_error(self, index: int) -> Any:
                return fake.parse_errors[index]

        self.ILogger, self.Builder, self.OnnxParser = ILogger, Builder, OnnxParser


class FakeProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple[Any, ...]] = {}

    def set_shape(self, name: str, low: Any, opt: Any, high: Any) -> None:
        self.shapes[name] = (low, opt, high)

    def __bool__(self) -> bool:
        return True


class FakeCache:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return self.data + b"+timed"


class FakeConfig:
    def __init__(self) -> None:
        self.pools: dict[str, int] = {}
        self.profiles: list[FakeProfile] = []
        self.cache: FakeCache | None = None

    def set_memory_pool_limit(self, pool: str, size: int) -> None:
        self.pools[pool] = size

    def add_optimization_profile(self, profile: FakeProfile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data: bytes) -> FakeCache | None:
        return None if data == b"corrupt" else FakeCache(bytes(data))

    def set_timing_cache(self, cache: FakeCache, ignore_mismatch: bool) -> bool:
        if cache.data == b"other-gpu" and not ignore_mismatch:
            return False
        self.cache = cache
        return True

    def get_timing_cache(self) -> FakeCache | None:
        return self.cache


@pytest.fixture(params=["10.13.0", "11.1.0"])
def fake_trt(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> FakeTrt:
    fake = FakeTrt(request.param)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    return fake


@pytest.fixture
def onnx_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"stand-in")
    return path


PROFILE = {"features": Shape((1, 8), (8, 8), (32, 8))}


def test_build_makes_a_strongly_typed_network_with_profiles_and_workspace(fake_trt: FakeTrt, onnx_file: Path) -> None:
    said: list[str] = []
    plan, cache = backend.build(onnx_file, [PROFILE, {"features": Shape((64, 8), (64, 8), (64, 8))}],
                                workspace_bytes=1 << 30, timing_cache=None, log=said.append)
    assert (plan, cache) == (b"plan", b"+timed")
    # TensorRT 10: 1 << STRONGLY_TYPED and no EXPLICIT_BATCH; TensorRT 11: strongly typed by default, no flags.
    assert fake_trt.flags == (0 if fake_trt.__version__.startswith("11") else 1 << 1)
    config = fake_trt.built[0]
    assert config.pools == {"workspace": 1 << 30}
    assert [p.shapes for p in config.profiles] == [{"features": ((1, 8), (8, 8), (32, 8))},
                                                  {"features": ((64, 8), (64, 8), (64, 8))}]
    assert said == ["tensorrt: weights are not aligned"]  # WARNING and above only


@pytest.mark.parametrize(("version", "members", "expected"), [
    ("9.3.0", ["EXPLICIT_BATCH", "STRONGLY_TYPED"], 0b11),  # before 10, explicit batch still has to be asked for
    ("10.0.1", ["EXPLICIT_BATCH", "STRONGLY_TYPED"], 0b10),
    ("11.0.0", ["STRONGLY_TYPED"], 0),
])
def test_network_flags_per_release(version: str, members: list[str], expected: int) -> None:
    trt = SimpleNamespace(__version__=version, NetworkDefinitionCreationFlag=flags(members))
    assert backend._network_flags(trt) == expected


def test_a_tensorrt_without_strong_typing_is_refused() -> None:
    trt = SimpleNamespace(__version__="8.6.1", NetworkDefinitionCreationFlag=flags(["EXPLICIT_BATCH"]))
    with pytest.raises(BuildFailed, match="cannot build strongly typed networks"):
        backend._network_flags(trt)


def test_a_given_timing_cache_is_used(fake_trt: FakeTrt, onnx_file: Path) -> None:
    _, cache = backend.build(onnx_file, [PROFILE], workspace_bytes=1, timing_cache=b"earlier", log=print)
    assert cache == b"earlier+timed"


@pytest.mark.parametrize("given", [b"other-gpu", b"corrupt"])
def test_a_rejected_timing_cache_is_replaced_by_a_fresh_one(fake_trt: FakeTrt, onnx_file: Path, given: bytes) -> None:
    said: list[str] = []
    _, cache = backend.build(onnx_file, [PROFILE], workspace_bytes=1, timing_cache=given, log=said.append)
    assert cache == b"+timed"
    assert any("starting a fresh one" in line for line in said)


def test_parser_errors_name_each_node(fake_trt: FakeTrt, onnx_file: Path) -> None:
    fake_trt.parse_errors = [
        SimpleNamespace(desc=lambda: "No importer registered for op: Frobnicate", node=lambda: 3,
                        node_name=lambda: "frob_0", node_operator=lambda: "Frobnicate"),
        SimpleNamespace(desc=lambda: "Invalid model", node=lambda: -1),  # no node; an old parser's error
    ]
    with pytest.raises(BuildFailed) as failed:
        backend.build(onnx_file, [PROFILE], workspace_bytes=1, timing_cache=None, log=print)
    assert str(failed.value) == (f"TensorRT could not parse {onnx_file}: No importer registered for op: Frobnicate "
                                 "at node 3 'frob_0' (Frobnicate); Invalid model")


def test_an_empty_build_says_so_and_suggests_a_bigger_workspace(fake_trt: FakeTrt, onnx_file: Path) -> None:
    fake_trt.fail_build = True
    said: list[str] = []
    with pytest.raises(BuildFailed, match="build_serialized_network returned None") as failed:
        backend.build(onnx_file, [PROFILE], workspace_bytes=4096, timing_cache=None, log=said.append)
    assert "out of workspace for tactic 7" in str(failed.value) and "bigger workspace (now 4096 bytes)" in str(
        failed.value)
    assert "tensorrt: out of workspace for tactic 7" in said


@pytest.mark.parametrize(("profiles", "message"), [
    ([], r"inputs \['features'\] have dynamic dimensions but no optimization profile"),
    ([{"other": Shape((1,), (1,), (1,))}], "profile 0 has no shape for the dynamic input 'features'"),
    ([{**PROFILE, "other": Shape((1,), (1,), (1,))}], "names 'other', which is not an input"),
    ([{"features": Shape((1,), (8,), (32,))}], "rank 1/1/1; the input has rank 2"),
])
def test_profiles_must_cover_the_dynamic_inputs(fake_trt: FakeTrt, onnx_file: Path, profiles: list[dict[str, Shape]],
                                                message: str) -> None:
    with pytest.raises(BuildFailed, match=message):
        backend.build(onnx_file, profiles, workspace_bytes=1, timing_cache=None, log=print)


def test_a_missing_onnx_file_fails_the_build(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed, match="does not exist"):
        backend.build(tmp_path / "absent.onnx", [PROFILE], workspace_bytes=1, timing_cache=None, log=print)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_building_without_tensorrt_says_what_to_install(onnx_file: Path) -> None:
    with pytest.raises(BuildFailed, match=r"pip install tensorrt"):
        backend.build(onnx_file, [PROFILE], workspace_bytes=1, timing_cache=None, log=print)


# --- real engines on a GPU ------------------------------------------------------------------------------------

BATCH = (1, 8, 32)


def export_mlp(path: Path, half: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """A Linear-ReLU-Linear over [batch, 8], exported with a dynamic batch; returns torch's own forward."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")  # the dynamo exporter's dependency
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()

    module: Any = torch.nn.Module

    class Half(module):  # type: ignore[misc]
        """fp16 inside the graph (Cast nodes), fp32 at its edges: how a strongly typed engine gets fp16."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner.half()

        def forward(self, x: Any) -> Any:
            return self.inner(x.half()).float()

    model = Half(mlp) if half else mlp
    example = torch.randn(2, 8)  # torch.export cannot make a dimension of size 0 or 1 dynamic
    torch.onnx.export(model, (example,), str(path), dynamo=True,
                      dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},),
                      input_names=["features"], output_names=["logits"])

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            if half:  # torch's fp16 Linear needs CUDA on some builds; compare on the GPU
                return model.cuda()(torch.from_numpy(x).cuda()).cpu().numpy()  # type: ignore[no-any-return]
            return model(torch.from_numpy(x)).numpy()  # type: ignore[no-any-return]

    return forward


def onnx_profiles(path: Path) -> list[dict[str, Shape]]:
    """The profile mlspec would derive from the exported file's own input dims."""
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(path)).graph
    inputs = [(i.name, tuple(d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim)) for i in graph.input]
    return [profile_shapes(inputs, BATCH, None)]


def test_the_exported_mlp_names_its_batch_dimension(tmp_path: Path) -> None:
    """On CPU too: the dynamo exporter names the dynamic dim after the torch.export.Dim, which profiles rely on."""
    export_mlp(tmp_path / "mlp.onnx")
    assert onnx_profiles(tmp_path / "mlp.onnx") == [{"features": Shape((1, 8), (8, 8), (32, 8))}]


needs_gpu = pytest.mark.skipif(machine().missing() is not None, reason=str(machine().missing()))


@pytest.fixture(scope="module")
def mlp_engine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Callable[[np.ndarray], np.ndarray], bytes, bytes]:
    path = tmp_path_factory.mktemp("mlp") / "mlp.onnx"
    forward = export_mlp(path)
    plan, cache = backend.build(path, onnx_profiles(path), workspace_bytes=1 << 28, timing_cache=None, log=print)
    return forward, plan, cache


@pytest.mark.gpu
@needs_gpu
def test_an_mlp_engine_matches_torch(mlp_engine: tuple[Callable[[np.ndarray], np.ndarray], bytes, bytes]) -> None:
    forward, plan, _ = mlp_engine
    said: list[str] = []
    engine = backend.Engine(plan, log=said.append)
    assert (engine.inputs, engine.outputs) == (["features"], ["logits"])
    rng = np.random.default_rng(0)
    for batch in (1, 32):
        x = rng.standard_normal((batch, 8)).astype(np.float32)
        out = engine.run({"features": x})
        assert out.dtype == np.float32 and out.shape == (batch, 3)
        np.testing.assert_allclose(out, forward(x), atol=1e-3)
    # float64 from the caller is cast to the engine's float32 input
    x64 = rng.standard_normal((4, 8))
    np.testing.assert_allclose(engine.run({"features": x64}), forward(x64.astype(np.float32)), atol=1e-3)
    engine.synchronize()


@pytest.mark.gpu
@needs_gpu
def test_the_timing_cache_round_trips(tmp_path: Path,
                                      mlp_engine: tuple[Callable[[np.ndarray], np.ndarray], bytes, bytes]) -> None:
    forward, _, cache = mlp_engine
    assert cache
    path = tmp_path / "mlp.onnx"
    export_mlp(path)
    said: list[str] = []
    plan, again = backend.build(path, onnx_profiles(path), workspace_bytes=1 << 28, timing_cache=cache,
                                log=said.append)
    assert again and not any("starting a fresh one" in line for line in said)
    x = np.ones((3, 8), dtype=np.float32)
    np.testing.assert_allclose(backend.Engine(plan).run({"features": x}), forward(x), atol=1e-3)


@pytest.mark.gpu
@needs_gpu
def test_a_shape_outside_the_profile_is_refused(
        mlp_engine: tuple[Callable[[np.ndarray], np.ndarray], bytes, bytes]) -> None:
    engine = backend.Engine(mlp_engine[1])
    with pytest.raises(ValueError, match=r"'features' has shape \(33, 8\), outside every profile.*max \(32, 8\)"):
        engine.run({"features": np.zeros((33, 8), dtype=np.float32)})
    with pytest.raises(ValueError, match="outside every profile"):
        engine.run({"features": np.zeros((2, 9), dtype=np.float32)})
    with pytest.raises(ValueError, match=r"missing \['features'\]"):
        engine.run({"x": np.zeros((2, 8), dtype=np.float32)})


@pytest.mark.gpu
@needs_gpu
def test_an_fp16_graph_builds_an_fp16_engine(tmp_path: Path) -> None:
    path = tmp_path / "mlp16.onnx"
    forward = export_mlp(path, half=True)
    plan, _ = backend.build(path, onnx_profiles(path), workspace_bytes=1 << 28, timing_cache=None, log=print)
    engine = backend.Engine(plan)
    x = np.random.default_rng(1).standard_normal((16, 8)).astype(np.float32)
    np.testing.assert_allclose(engine.run({"features": x}), forward(x), atol=1e-2)


@pytest.mark.gpu
@needs_gpu
def test_real_parser_errors_name_the_node(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    node = helper.make_node("Frobnicate", ["features"], ["logits"], name="frob_0", domain="mlspec.test")
    graph = helper.make_graph([node], "bad", [helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [2, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("mlspec.test", 1)])
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    with pytest.raises(BuildFailed, match="frob_0"):
        backend.build(path, [], workspace_bytes=1 << 28, timing_cache=None, log=print)
