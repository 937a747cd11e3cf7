"""The project index: cross-file names, values and models, read as a specification."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest

from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import training_steps
from gradlint.engine import FileChecker
from gradlint.findings import Severity
from gradlint.index import ProjectIndex
from gradlint.rules import ALL_RULES
from snippets import lint

ROOT = Path("/virtual-project")


def project_of(files: dict[str, str]) -> tuple[ProjectIndex, dict[str, object]]:
    checker = FileChecker(ALL_RULES)
    sources = {
        name: checker.load_text(textwrap.dedent(text), ROOT / name, name) for name, text in files.items()
    }
    return ProjectIndex(sources.values(), roots=[ROOT]), sources


def value_of(files: dict[str, str], file: str, needle: str):
    """Resolve the first argument of the call whose callee is `needle` in `file`."""
    project, sources = project_of(files)
    source = sources[file]
    model = project.model(ROOT / file)
    assert model is not None
    for site in model.calls:
        if site.callee == needle:
            resolved = project.resolver.resolve(site.node.args[0].value, project.scope(source.path, site.function))
            return None if resolved is None else resolved.value
    raise AssertionError(f"no call to {needle} in {file}")


def probe(expression: str, prelude: str = "", extra: dict[str, str] | None = None):
    """Resolve `expression` written as the argument of `probe(...)` at the end of train.py."""
    code = textwrap.dedent(prelude) + f"\nprobe({expression})\n"
    return value_of({"train.py": code, **(extra or {})}, "train.py", "probe")


# ------------------------------------------------------------------------ values


def test_literals_and_arithmetic_resolve():
    assert probe("2 ** 10 + 3") == 1027
    assert probe("-1e-3") == -0.001
    assert probe('float("inf")') == float("inf")


def test_module_constant_resolves():
    assert probe("HIDDEN * 2", "HIDDEN = 128\n") == 256


def test_constant_imported_from_a_sibling_module_resolves():
    assert probe("BPTT", "from config import BPTT\n", {"config.py": "BPTT = 35 * 4\n"}) == 140


def test_constant_through_an_imported_module_attribute_resolves():
    assert probe("config.BPTT", "import config\n", {"config.py": "BPTT = 200\n"}) == 200


def test_relative_import_and_package_re_export_resolve():
    files = {
        "pkg/__init__.py": "from .settings import LAYERS\n",
        "pkg/settings.py": "LAYERS = 6\n",
        "train.py": "from pkg import LAYERS\nprobe(LAYERS)\n",
    }
    assert value_of(files, "train.py", "probe") == 6


def test_argparse_default_resolves_with_dashes_turned_into_underscores():
    prelude = """\
        import argparse
        parser = argparse.ArgumentParser()
        parser.add_argument("--n-layers", type=int, default=4)
        parser.add_argument("--bptt", type=int, default=35)
        args = parser.parse_args()
    """
    assert probe("args.n_layers", prelude) == 4
    assert probe("args.bptt * 2", prelude) == 70


def test_argparse_store_true_defaults_to_false():
    prelude = """\
        import argparse
        parser = argparse.ArgumentParser()
        parser.add_argument("--tied", action="store_true")
        args = parser.parse_args()
    """
    assert probe("args.tied", prelude) is False


def test_argparse_default_seen_from_a_function_taking_args():
    code = """\
        import argparse

        def train(args):
            probe(args.lr)

        if __name__ == "__main__":
            parser = argparse.ArgumentParser()
            parser.add_argument("--lr", type=float, default=0.5)
            train(parser.parse_args())
    """
    assert value_of({"train.py": code}, "train.py", "probe") == 0.5


def test_argparse_defined_in_an_options_module_resolves():
    files = {
        "options.py": """\
            import argparse

            def get_parser():
                parser = argparse.ArgumentParser()
                parser.add_argument("--hidden-size", type=int, default=512)
                return parser
        """,
        "train.py": "from options import get_parser\n\n\ndef main(args):\n    probe(args.hidden_size)\n",
    }
    assert value_of(files, "train.py", "probe") == 512


def test_an_option_of_a_file_the_script_does_not_import_is_never_used():
    """A wrong default is worse than none: `--lr` of an unrelated script says nothing about this one's."""
    files = {
        "compression/train.py": """\
            import argparse

            parser = argparse.ArgumentParser()
            parser.add_argument("--lr", type=float, default=0.1)
        """,
        "gan/train.py": "def main(args):\n    probe(args.lr)\n",
    }
    assert value_of(files, "gan/train.py", "probe") is None


def test_the_parser_a_project_function_returns_wins_over_another_imported_file():
    """DeepSpeedExamples' GAN script: `parser = get_argument_parser()` from its utils.py, whose
    `--lr` defaults to 0.0002; another file it imports defines `--lr` too."""
    files = {
        "utils.py": """\
            import argparse

            def get_argument_parser():
                parser = argparse.ArgumentParser(description="GAN")
                parser.add_argument("--lr", type=float, default=0.0002)
                return parser
        """,
        "defaults.py": """\
            import argparse

            parser = argparse.ArgumentParser()
            parser.add_argument("--lr", type=float, default=0.1)
        """,
        "train.py": """\
            import defaults
            from utils import get_argument_parser


            def train(args):
                probe(args.lr)


            def main():
                parser = get_argument_parser()
                args = parser.parse_args()
                train(args)
        """,
    }
    assert value_of(files, "train.py", "probe") == 0.0002


def test_dataclass_field_default_resolves():
    prelude = """\
        from dataclasses import dataclass

        @dataclass
        class TrainConfig:
            lr: float = 3e-4
            layers: int = 3

        cfg = TrainConfig()
    """
    assert probe("cfg.layers", prelude) == 3


def test_dataclass_keyword_override_wins_over_the_default():
    prelude = """\
        from dataclasses import dataclass

        @dataclass
        class TrainConfig:
            layers: int = 3

        cfg = TrainConfig(layers=8)
    """
    assert probe("cfg.layers", prelude) == 8


def test_dict_config_subscript_get_and_getattr_default():
    prelude = 'CONFIG = {"lr": 0.1, "model": {"layers": 5}}\n'
    assert probe('CONFIG["lr"]', prelude) == 0.1
    assert probe('CONFIG["model"]["layers"]', prelude) == 5
    assert probe('CONFIG.get("clip", 0.25)', prelude) == 0.25
    assert probe('getattr(cfg, "clip", 0.5)', "cfg = object()\n") == 0.5


def test_function_default_argument_resolves():
    code = """\
        def build(hidden=256):
            probe(hidden)
    """
    assert value_of({"train.py": code}, "train.py", "probe") == 256


def test_constructor_call_site_in_another_file_resolves_a_parameter():
    files = {
        "model.py": """\
            import torch.nn as nn

            class RNNModel(nn.Module):
                def __init__(self, ninp, nhid, nlayers=1):
                    super().__init__()
                    self.rnn = nn.RNN(ninp, nhid, nlayers)
                    probe(nlayers)
        """,
        "train.py": """\
            import argparse
            from model import RNNModel

            parser = argparse.ArgumentParser()
            parser.add_argument("--nlayers", type=int, default=4)
            args = parser.parse_args()
            model = RNNModel(32, 64, args.nlayers)
        """,
    }
    project, sources = project_of(files)
    model = project.model(ROOT / "model.py")
    site = next(site for site in model.calls if site.callee == "probe")
    resolved = project.resolver.resolve(site.node.args[0].value, project.scope(ROOT / "model.py", site.function))
    assert resolved.value == 4
    assert "--nlayers" in resolved.origin and "train.py" in resolved.origin


def test_unresolvable_values_stay_unresolved():
    prelude = """\
        import json, sys
        cfg = json.load(open(sys.argv[1]))
    """
    assert probe('cfg["layers"]', prelude) is None
    assert probe("undefined_name") is None
    assert probe("len(sys.argv)", prelude) is None


def test_local_assignment_shadows_a_module_constant():
    code = """\
        LAYERS = 2

        def build(args):
            LAYERS = args.unknown_flag
            probe(LAYERS)
    """
    assert value_of({"train.py": code}, "train.py", "probe") is None


# ------------------------------------------------------------------------ symbols


def test_class_symbol_resolves_through_a_package_re_export():
    files = {
        "lmpkg/__init__.py": "from .model import RNNLM\n",
        "lmpkg/model.py": "class RNNLM:\n    pass\n",
        "train.py": "from lmpkg import RNNLM\n",
    }
    project, _ = project_of(files)
    symbol = project.resolve(ROOT / "train.py", "RNNLM")
    assert symbol is not None and symbol.kind == "class" and symbol.path == ROOT / "lmpkg/model.py"


def test_unknown_import_does_not_resolve():
    project, _ = project_of({"train.py": "from somewhere_else import Thing\n"})
    assert project.resolve(ROOT / "train.py", "Thing") is None


def test_call_sites_of_a_class_are_found_across_files():
    files = {
        "model.py": "class Net:\n    def __init__(self, n):\n        self.n = n\n",
        "a.py": "from model import Net\nnet = Net(3)\n",
        "b.py": "import model\nother = model.Net(4)\n",
    }
    project, _ = project_of(files)
    symbol = project.resolve(ROOT / "model.py", "Net")
    assert sorted(path.name for path, _ in project.call_sites(symbol)) == ["a.py", "b.py"]


# ------------------------------------------------------------------ trained model


TRAIN = """\
    import torch
    from model import Seq

    model = Seq(16, 32).to("cpu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def train(loader):
        for x, y in loader:
            optimizer.zero_grad()
            loss = (model(x) - y).pow(2).mean()
            loss.backward()
            optimizer.step()
"""


@pytest.mark.parametrize(
    "layer, recurrent",
    [("nn.LSTM(n_in, n_hidden)", True), ("nn.Linear(n_in, n_hidden)", False)],
)
def test_the_model_a_step_trains_is_found_in_another_file(layer: str, recurrent: bool):
    files = {
        "model.py": f"""\
            import torch.nn as nn

            class Seq(nn.Module):
                def __init__(self, n_in, n_hidden):
                    super().__init__()
                    self.body = {layer}
        """,
        "train.py": TRAIN,
    }
    project, sources = project_of(files)
    model = project.model(ROOT / "train.py")
    (step,) = training_steps(model)
    facts = project.facts.trained_by(step, ROOT / "train.py")
    assert facts is not None and facts.name == "Seq"
    assert bool(facts.recurrent) is recurrent


def test_recurrent_layers_of_a_submodule_class_count():
    files = {
        "model.py": """\
            import torch.nn as nn

            class Encoder(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.rnn = nn.GRU(8, 8)

            class Seq(nn.Module):
                def __init__(self, n_in, n_hidden):
                    super().__init__()
                    self.encoder = Encoder()
        """,
        "train.py": TRAIN,
    }
    findings = lint(textwrap.dedent(TRAIN), "GL101", extra={"model.py": textwrap.dedent(files["model.py"])})
    (finding,) = findings
    assert finding.severity is Severity.WARNING
    assert "nn.GRU" in finding.message and "model.py" in finding.message


def test_gl101_is_info_when_the_trained_model_is_feedforward_even_if_a_neighbour_has_an_rnn():
    files = {
        "model.py": "import torch.nn as nn\n\n\nclass Seq(nn.Module):\n    def __init__(self, a, b):\n        super().__init__()\n        self.body = nn.Linear(a, b)\n",
        "other_experiment.py": "import torch.nn as nn\n\nrnn = nn.LSTM(4, 4)\n",
    }
    (finding,) = lint(textwrap.dedent(TRAIN), "GL101", extra=files)
    assert finding.severity is Severity.INFO
    assert "`Seq` has no recurrent layer" in finding.message


def test_gl101_names_a_high_learning_rate_resolved_from_argparse():
    code = """\
        import argparse
        import torch

        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, default=0.1)
        args = parser.parse_args()
        model = torch.nn.Linear(4, 4)
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

        for x, y in []:
            optimizer.zero_grad()
            (model(x) - y).pow(2).mean().backward()
            optimizer.step()
    """
    (finding,) = lint(textwrap.dedent(code), "GL101")
    assert finding.severity is Severity.WARNING
    assert "learning rate is 0.1 for Adam" in finding.message and "--lr" in finding.message


def test_dotted_name_helper_keeps_subscripts_out():
    assert dotted_name(cst.parse_expression("a.b.c")) == "a.b.c"
    assert dotted_name(cst.parse_expression("f().x")) is None


def test_lightning_manual_optimization_trains_the_module_itself():
    code = """\
        import lightning as L
        import torch.nn as nn


        class ManualModel(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.automatic_optimization = False
                self.layer = nn.Linear(32, 2)

            def training_step(self, batch, batch_idx):
                opt = self.optimizers()
                loss = self.layer(batch).sum()
                opt.zero_grad()
                self.manual_backward(loss)
                opt.step()
    """
    neighbour = "import torch.nn as nn\n\nlstm = nn.LSTM(4, 4)\n"
    (finding,) = lint(textwrap.dedent(code), "GL101", extra={"lstm_demo.py": neighbour})
    assert finding.severity is Severity.INFO
    assert "`ManualModel` has no recurrent layer" in finding.message


def test_tuple_unpacking_binds_element_wise():
    assert probe("width", "width, d_in = 256, 32\n") == 256
    assert probe("width", "width, d_in = make_sizes()\n") is None


def test_origin_names_where_a_value_came_from():
    files = {"config.py": "BPTT = 200\n", "train.py": "from config import BPTT\nprobe(BPTT)\n"}
    project, sources = project_of(files)
    model = project.model(ROOT / "train.py")
    site = next(site for site in model.calls if site.callee == "probe")
    resolved = project.resolver.resolve(site.node.args[0].value, project.scope(ROOT / "train.py", None))
    assert resolved.value == 200 and str(resolved.origin) == "BPTT = ... (config.py:1)"


def test_a_module_found_in_the_import_roots_is_one_dependency_however_many_roots(tmp_path):
    """Each script folder is an import root; a module name is looked up in all of them, but the
    answer costs one dependency (which file it finds), not one per file tried in each root."""
    checker = FileChecker([])
    sources = []
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "__init__.py").write_text("")
    (tmp_path / "lib" / "layers.py").write_text("WIDTH = 3\n")
    sources.append(checker.load(tmp_path / "lib" / "layers.py", "lib/layers.py"))
    for number in range(60):
        folder = tmp_path / f"exp{number:03d}"
        folder.mkdir()
        (folder / "train.py").write_text("from lib.layers import WIDTH\n")
        sources.append(checker.load(folder / "train.py", f"exp{number:03d}/train.py"))
    project = ProjectIndex(sources, roots=[tmp_path])
    script = tmp_path / "exp059" / "train.py"
    with project.deps.recording() as noted:
        symbol = project.resolve(script, "WIDTH")
    assert symbol is not None and symbol.path == tmp_path / "lib" / "layers.py"
    assert ("module", "lib.layers") in noted
    assert len([dependency for dependency in noted if dependency[0] == "exists"]) <= 4
    assert project.dependency_value(("module", "lib.layers")) == project.dependency_value(("module", "lib.layers"))
    (tmp_path / "lib" / "layers.py").unlink()
    (tmp_path / "lib" / "layers" ).mkdir()
    fresh = ProjectIndex(sources[1:], roots=[tmp_path])
    assert fresh.dependency_value(("module", "lib.layers")) != project.dependency_value(("module", "lib.layers"))
