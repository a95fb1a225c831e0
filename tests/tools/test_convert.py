#!/usr/bin/python3
"""tools/convert.py on checkpoints written by this test in the official layouts: torch.save state
dicts and checkpoint dicts (OTAvatar, DPE), NVlabs persistent-network pickles, and hostile
pickles that must be refused without running anything. With the shared fixtures present, a
converted NVlabs-style pickle of the stylegan2_ada weights must pass `avatar check-reference`."""
import argparse
import collections
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import types
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import convert  # noqa: E402

CLI = os.environ.get("AVATAR_CLI")
SHARED = os.environ.get("AVATAR_SHARED_DIR", os.path.join(ROOT, "..", "shared"))


def read_safetensors(path):
    import json
    import struct
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": torch.float32, "F16": torch.float16, "F64": torch.float64,
              "I64": torch.int64, "U8": torch.uint8, "BF16": torch.bfloat16, "I32": torch.int32}
    out = collections.OrderedDict()
    meta = header.pop("__metadata__", {})
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = bytearray(data[b:e])
        t = torch.frombuffer(raw, dtype=dtypes[info["dtype"]]) if raw else torch.empty(0, dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"])
    return out, meta


# A stand-in for NVlabs' torch_utils.persistence: networks pickle as
# _reconstruct_persistent_obj(meta), with their class source embedded as text in meta.
persistence = types.ModuleType("torch_utils.persistence")
sys.modules.setdefault("torch_utils", types.ModuleType("torch_utils"))
sys.modules["torch_utils.persistence"] = persistence


def _reconstruct_persistent_obj(meta):  # never called by the converter
    raise AssertionError("the converter must not call the NVlabs reconstructor")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
MARKER = os.path.join(tempfile.gettempdir(), f"avatar-convert-executed-{os.getpid()}")


class PersistentNet(torch.nn.Module):
    """Pickles like an NVlabs persistent class, with hostile source that must never run."""

    def __reduce__(self):
        meta = dict(type="class", version=6, class_name="training.networks.Generator",
                    module_src=f"open({MARKER!r}, 'w').write('executed')",
                    state=dict(self.__dict__))
        return (_reconstruct_persistent_obj, (meta,))


def nvlabs_tree(state_dict):
    """A module tree (persistent nodes, plain ModuleList inside) holding `state_dict`."""
    root = PersistentNet()
    root.__dict__["_init_kwargs"] = {"z_dim": 64, "conv_clamp": None}
    for name, tensor in state_dict.items():
        *path, leaf = name.split(".")
        node = root
        for part in path:
            if part not in node._modules:
                node._modules[part] = PersistentNet() if part != "layers" else torch.nn.ModuleList()
            node = node._modules[part]
        if name.endswith(("resample_filter", "noise_const", "w_avg")):
            node.register_buffer(leaf, tensor.clone())
        else:
            node.register_parameter(leaf, torch.nn.Parameter(tensor.clone(), requires_grad=False))
    return root


def run(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert.py"), *args],
                          capture_output=True, text=True)


class ConvertTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="avatar-convert-")
        torch.manual_seed(0)
        self.sd = collections.OrderedDict(
            [("mapping.fc0.weight", torch.randn(4, 3)), ("mapping.fc0.bias", torch.randn(4)),
             ("synthesis.b4.const", torch.randn(2, 4, 4)), ("step", torch.tensor(7)),
             ("noise.scale16", torch.randn(3).half())])

    def tearDown(self):
        shutil.rmtree(self.dir)

    def assertConverted(self, out, expected, key=None):
        got, meta = read_safetensors(out)
        self.assertEqual(list(got), list(expected))
        for name in expected:
            self.assertTrue(torch.equal(got[name], expected[name]), name)
        if key:
            self.assertEqual(meta["key"], key)
        return meta

    def test_plain_state_dict(self):
        src, out = os.path.join(self.dir, "sd.pth"), os.path.join(self.dir, "sd.safetensors")
        torch.save(self.sd, src)
        self.assertEqual(run(src, out).returncode, 0)
        self.assertConverted(out, self.sd)

    def test_otavatar_checkpoint_dict(self):
        src = os.path.join(self.dir, "otavatar.pt")
        warp = collections.OrderedDict([("direction.weight", torch.randn(8, 3))])
        torch.save({"net_G_ema": self.sd, "net_Warp_ema": warp, "opt_G": {"state": {}},
                    "current_epoch": 5, "current_iteration": 2000}, src)
        listed = run(src, "--list")
        self.assertIn("net_Warp_ema: state dict of 1 tensors", listed.stdout)
        out = os.path.join(self.dir, "warp.safetensors")
        self.assertEqual(run(src, out, "--key", "net_Warp_ema").returncode, 0)
        self.assertConverted(out, warp, key="net_Warp_ema")
        missing = run(src, out + "2")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("--key", missing.stderr)

    def test_dpe_checkpoint_with_foreign_objects(self):
        src, out = os.path.join(self.dir, "dpe.pt"), os.path.join(self.dir, "dpe.safetensors")
        module_sd = {"module." + k: v for k, v in self.sd.items()}
        torch.save({"gen": module_sd, "args": argparse.Namespace(size=256, lr=0.002)}, src)
        self.assertEqual(run(src, out, "--strip-prefix", "module.").returncode, 0)
        self.assertConverted(out, self.sd, key="gen")

    def test_nvlabs_pickle_never_runs_embedded_code(self):
        src, out = os.path.join(self.dir, "net.pkl"), os.path.join(self.dir, "net.safetensors")
        tree = nvlabs_tree(self.sd)
        with open(src, "wb") as f:
            pickle.dump({"G": nvlabs_tree(self.sd), "G_ema": tree,
                         "training_set_kwargs": {"resolution": 64}}, f)
        result = run(src, out)
        self.assertEqual(result.returncode, 0, result.stderr)
        # Same tensors, in the order torch's own state_dict() would list them.
        meta = self.assertConverted(out, tree.state_dict(), key="G_ema")
        self.assertIn("z_dim", meta["init_kwargs"])
        self.assertFalse(os.path.exists(MARKER))

    def test_hostile_pickle_is_refused(self):
        class Hostile:
            def __reduce__(self):
                return (os.system, (f"touch {MARKER}",))
        src = os.path.join(self.dir, "evil.pkl")
        with open(src, "wb") as f:
            pickle.dump({"G_ema": Hostile()}, f)
        result = run(src, os.path.join(self.dir, "evil.safetensors"))
        self.assertEqual(result.returncode, 1)
        self.assertIn("refusing", result.stderr)
        self.assertFalse(os.path.exists(MARKER))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "evil.safetensors")))

    def test_corrupt_and_missing_inputs(self):
        src = os.path.join(self.dir, "junk.pt")
        with open(src, "wb") as f:
            f.write(b"\x80\x04not a pickle at all")
        self.assertEqual(run(src, src + ".safetensors").returncode, 1)
        self.assertEqual(run(os.path.join(self.dir, "absent.pt"), "x.safetensors").returncode, 1)

    @unittest.skipUnless(CLI and os.path.isfile(os.path.join(SHARED, "reference", "stylegan2_ada", "config.json")),
                         "needs the avatar program and the shared stylegan2_ada fixture")
    def test_converted_nvlabs_pickle_reproduces_the_fixture(self):
        fixture = os.path.join(SHARED, "reference", "stylegan2_ada")
        weights, _ = read_safetensors(os.path.join(fixture, "weights.safetensors"))
        src = os.path.join(self.dir, "network-snapshot.pkl")
        with open(src, "wb") as f:
            pickle.dump({"G_ema": nvlabs_tree(weights), "augment_pipe": None}, f)
        copy = os.path.join(self.dir, "fixture")
        os.mkdir(copy)
        for name in ("config.json", "cases.safetensors"):
            shutil.copy(os.path.join(fixture, name), copy)
        result = run(src, os.path.join(copy, "weights.safetensors"))
        self.assertEqual(result.returncode, 0, result.stderr)
        check = subprocess.run([CLI, "-q", "check-reference", copy], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn("result: pass", check.stdout)

    @unittest.skipUnless(CLI and os.path.isfile(os.path.join(SHARED, "reference", "dpe", "config.json")),
                         "needs the avatar program and the shared dpe fixture")
    def test_dpe_training_checkpoint_reproduces_the_fixture(self):
        # The official training code saves {'gen', 'dis', 'g_optim', 'd_optim', 'args'}.
        fixture = os.path.join(SHARED, "reference", "dpe")
        weights, _ = read_safetensors(os.path.join(fixture, "weights.safetensors"))
        src = os.path.join(self.dir, "dpe.pt")
        torch.save({"gen": weights, "dis": {"convs.0.0.weight": torch.randn(2, 3, 1, 1)},
                    "g_optim": {"state": {}, "param_groups": [{"lr": 0.002}]},
                    "d_optim": {"state": {}, "param_groups": []},
                    "args": argparse.Namespace(size=256, latent_dim_motion=20)}, src)
        copy = os.path.join(self.dir, "fixture")
        os.mkdir(copy)
        for name in ("config.json", "cases.safetensors"):
            shutil.copy(os.path.join(fixture, name), copy)
        result = run(src, os.path.join(copy, "weights.safetensors"), "--key", "gen")
        self.assertEqual(result.returncode, 0, result.stderr)
        check = subprocess.run([CLI, "-q", "check-reference", copy], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn("result: pass", check.stdout)

    def fixture_copy(self, name, extra=()):
        """A copy of a shared fixture folder without its weights; returns (source, copy)."""
        fixture = os.path.join(SHARED, "reference", name)
        copy = os.path.join(self.dir, name)
        os.mkdir(copy)
        for f in ("config.json", "cases.safetensors", *extra):
            shutil.copy(os.path.join(fixture, f), copy)
        return fixture, copy

    def check_reference(self, folder):
        check = subprocess.run([CLI, "-q", "check-reference", folder], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn("result: pass", check.stdout)

    @unittest.skipUnless(CLI and all(os.path.isfile(os.path.join(SHARED, "reference", f, "config.json"))
                                     for f in ("eg3d", "otavatar_controller")),
                         "needs the avatar program and the shared eg3d/otavatar_controller fixtures")
    def test_otavatar_checkpoint_reproduces_generator_and_controller_fixtures(self):
        # OTAvatar's trainer saves net_G_ema (EG3D, fine-tuned) and net_Warp_ema (controller).
        eg3d, eg3d_copy = self.fixture_copy("eg3d", ("weights_native256.safetensors",))
        ctrl, ctrl_copy = self.fixture_copy("otavatar_controller")
        generator, _ = read_safetensors(os.path.join(eg3d, "weights.safetensors"))
        controller, _ = read_safetensors(os.path.join(ctrl, "weights.safetensors"))
        src = os.path.join(self.dir, "epoch_00005_iteration_000002000_checkpoint.pt")
        torch.save({"net_G": generator, "net_G_ema": generator, "net_Warp": controller,
                    "net_Warp_ema": controller, "opt_G": {"state": {}}, "sch_G": {"last_epoch": 5},
                    "current_epoch": 5, "current_iteration": 2000}, src)
        for key, folder in (("net_G_ema", eg3d_copy), ("net_Warp_ema", ctrl_copy)):
            result = run(src, os.path.join(folder, "weights.safetensors"), "--key", key)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.check_reference(folder)

    @unittest.skipUnless(CLI and os.path.isfile(os.path.join(SHARED, "reference", "pvp", "config.json")),
                         "needs the avatar program and the shared pvp fixture")
    def test_pvp_lightning_checkpoint_reproduces_the_fixture(self):
        # PVP trains with PyTorch Lightning: state_dict keys prefixed latent_module. and stylegan.
        pvp, copy = self.fixture_copy("pvp")
        latent, _ = read_safetensors(os.path.join(pvp, "weights.safetensors"))
        stylegan, _ = read_safetensors(os.path.join(SHARED, "reference", "stylegan2_ada", "weights.safetensors"))
        state = collections.OrderedDict([("latent_module." + k, v) for k, v in latent.items()] +
                                        [("stylegan." + k, v) for k, v in stylegan.items()])
        src = os.path.join(self.dir, "last.ckpt")
        torch.save({"state_dict": state, "epoch": 3, "hyper_parameters": {"lr": 5e-4}}, src)
        result = run(src, os.path.join(copy, "weights.safetensors"), "--key", "state_dict",
                     "--prefix", "latent_module.")
        self.assertEqual(result.returncode, 0, result.stderr)
        # The render case reads the generator from ../stylegan2_ada relative to the fixture.
        os.makedirs(os.path.join(self.dir, "stylegan2_ada"))
        result = run(src, os.path.join(self.dir, "stylegan2_ada", "weights.safetensors"),
                     "--key", "state_dict", "--prefix", "stylegan.")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.check_reference(copy)


if __name__ == "__main__":
    unittest.main(verbosity=2)
