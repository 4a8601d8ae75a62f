"""torch.fx converter to the graph IR, user Mutators on Placeholders, and code generation back to a module."""
import pytest
import torch

import nni.retiarii.nn.pytorch as nn
from nni.retiarii import Mutator, Sampler, basic_unit
from nni.retiarii.codegen import model_to_pytorch_module
from nni.retiarii.converter import convert_to_graph, operation_type_of, resolve_operation_type


class Base(nn.Module):
    """The docs' pattern: a base model with a Placeholder that a Mutator replaces."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.block = nn.Placeholder(label="mutable_0", kernel_size_options=[1, 3, 5], channels=4)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(4, 2, 1))

    def forward(self, x):
        x = self.stem(x)
        a, _ = x.chunk(2, 1)
        return torch.cat([self.head(self.block(x)), a], 1).mean((2, 3))


class KernelMutator(Mutator):
    def __init__(self, target):
        super().__init__(label=target)

    def mutate(self, model):
        for node in model.get_nodes_by_label(self.label):
            params = node.operation.parameters
            k = self.choice(params["kernel_size_options"])
            c = params["channels"]
            node.update_operation("Conv2d", {"in_channels": c, "out_channels": c, "kernel_size": k, "padding": k // 2})


class Pick(Sampler):
    def __init__(self, value):
        self.value = value

    def choice(self, candidates, mutator, model, index):
        return self.value


def test_conversion_builds_the_ir():
    model = convert_to_graph(Base())
    graph = model.root_graph
    assert graph.input_names == ["x"]
    assert [n.name for n in model.get_nodes_by_label("mutable_0")] == ["block"]
    block = graph.get_node_by_name("block")
    assert block.operation.type == "Placeholder" and block.operation.parameters == {"kernel_size_options": [1, 3, 5], "channels": 4}
    stem = graph.get_node_by_name("stem")
    assert stem.operation.type == "Conv2d"
    assert stem.operation.parameters == {"in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1}
    assert [n.name for n in model.get_nodes_by_type("Conv2d")] == ["stem", "head_1"]
    assert block.predecessors == [stem] and graph.get_node_by_name("head_0").predecessors == [block]
    cat = graph.get_node_by_name("cat")
    assert cat.operation.type == "function.cat" and sorted(e.tail_slot for e in cat.incoming_edges) == [0, 1]
    assert graph.output_node.predecessors[0].operation.type == "method.mean"


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_mutator_replaces_the_placeholder_and_codegen_runs_it(kernel):
    base = convert_to_graph(Base())
    mutated = KernelMutator("mutable_0").bind_sampler(Pick(kernel)).apply(base)
    module = model_to_pytorch_module(mutated)
    assert module.block.kernel_size == (kernel, kernel)
    assert module(torch.randn(2, 1, 8, 8)).shape == (2, 4)
    # the original is unchanged: its Placeholder still refuses to run
    assert base.root_graph.get_node_by_name("block").operation.type == "Placeholder"
    with pytest.raises(RuntimeError, match="must be replaced by a Mutator"):
        model_to_pytorch_module(base)(torch.randn(1, 1, 8, 8))


def test_dry_run_on_the_converted_model():
    candidates, _ = KernelMutator("mutable_0").dry_run(convert_to_graph(Base()))
    assert candidates == [[1, 3, 5]]


def test_codegen_round_trip_gives_identical_outputs():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 3, 3)
            self.body = nn.Sequential(nn.ReLU(), torch.nn.Conv2d(3, 3, 1))
            self.scale = torch.nn.Parameter(torch.full((1,), 2.0))

        def forward(self, x):
            return self.body(self.conv(x)).flatten(1) * self.scale

    original = Plain()
    x = torch.randn(2, 1, 5, 5)
    generated = model_to_pytorch_module(convert_to_graph(original))
    assert torch.equal(generated(x), original(x))

    class Swap(Mutator):
        def mutate(self, model):
            node = model.root_graph.get_node_by_name("body_0")
            node.update_operation(self.choice(["Tanh", "Sigmoid"]))

    for op in ("Tanh", "Sigmoid"):
        mutated = model_to_pytorch_module(Swap(Pick(op)).apply(convert_to_graph(original)))
        expected = original.body[1](getattr(torch, op.lower())(original.conv(x))).flatten(1) * 2
        assert type(mutated.body_0).__name__ == op and torch.allclose(mutated(x), expected)


def test_topology_changes_are_refused():
    class AddNode(Mutator):
        def mutate(self, model):
            self.choice([0])
            model.root_graph.add_node("extra", "ReLU")

    mutated = AddNode(Pick(0)).apply(convert_to_graph(Base()))
    with pytest.raises(ValueError, match="only operations can be replaced"):
        model_to_pytorch_module(mutated)


def test_untraceable_forward_needs_basic_unit():
    class Loop(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow
                return x
            return -x

    class Outer(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

    with pytest.raises(ValueError, match="cannot be traced with torch.fx .*@basic_unit"):
        convert_to_graph(Outer(Loop()))
    LoopUnit = basic_unit(type("LoopUnit", (Loop,), {"__module__": __name__}))
    model = convert_to_graph(Outer(LoopUnit()))
    assert model.root_graph.get_node_by_name("inner").operation.type.endswith("LoopUnit")
    generated = model_to_pytorch_module(model)
    x = -torch.ones(3)
    assert torch.equal(generated(x), torch.ones(3))


def test_operation_types_resolve_both_ways():
    assert operation_type_of(nn.Conv2d) == "Conv2d" and operation_type_of(torch.nn.Conv2d) == "Conv2d"
    assert operation_type_of(nn.LayerChoice) == "LayerChoice"
    assert resolve_operation_type("Conv2d") is nn.Conv2d
    assert resolve_operation_type("torch.nn.modules.linear.Linear") is torch.nn.Linear
    with pytest.raises(ValueError, match="not a module of nni.retiarii.nn.pytorch"):
        resolve_operation_type("Conv9d")
    with pytest.raises(ValueError, match="does not name a class"):
        resolve_operation_type("torch.nn.NoSuchThing")


# ---------------------------------------------------------------- inline primitives on the graph-based path

class InlineSpace(nn.Module):
    def __init__(self):
        super().__init__()
        hidden = nn.ValueChoice([6, 10], label="hidden")
        self.fc1 = nn.Linear(4, hidden)
        self.op = nn.LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="op")
        self.rep = nn.Repeat(nn.Linear(4, 4), (1, 3), label="depth")
        self.mid = nn.Linear(hidden, 4)
        self.back = nn.Linear(4, hidden)
        self.skip = nn.InputChoice(2, 1, reduction="sum", label="skip")
        self.rate = nn.ValueChoice([0.0, 1.0], label="rate")
        self.fc2 = nn.Linear(hidden, 2)

    def forward(self, x):
        h = self.fc1(x)
        y = self.back(self.rep(self.mid(self.op(h))))
        z = self.skip([h, y])
        return self.fc2(nn.functional.dropout(z, self.rate(), True))


@pytest.mark.parametrize("picks", [0, 1, -1])
def test_inline_mutators_and_codegen_match_fixed_arch(picks):
    from nni.retiarii import fixed_arch
    from nni.retiarii.converter import inline_mutators

    base = convert_to_graph(InlineSpace())
    mutators = inline_mutators(base)
    assert [m.label for m in mutators] == ["hidden", "op", "depth", "skip", "rate"]
    assert [n.name for n in base.get_nodes_by_type("Linear")] == ["fc1", "mid", "back", "fc2"]

    class Index(Sampler):
        def choice(self, candidates, mutator, model, index):
            return candidates[picks]

    model = base
    for mutator in mutators:
        model = mutator.bind_sampler(Index()).apply(model)
    generated = model_to_pytorch_module(model)
    with fixed_arch(model.sample):
        reference = InlineSpace()
    assert sorted(generated.state_dict()) == sorted(reference.state_dict())
    generated.load_state_dict(reference.state_dict())
    x = torch.randn(3, 4)
    torch.manual_seed(0)
    expected = reference(x)
    torch.manual_seed(0)
    assert torch.equal(generated(x), expected)
    assert base.sample == {} and base.root_graph.get_node_by_name("op").operation.type == "LayerChoice"


def test_inline_mutators_refuse_nested_choices():
    from nni.retiarii.converter import inline_mutators

    class Nested(nn.Module):
        def __init__(self):
            super().__init__()
            self.op = nn.LayerChoice([nn.Linear(2, nn.ValueChoice([2, 3], label="w")), nn.Identity()], label="op")

        def forward(self, x):
            return self.op(x)

    with pytest.raises(ValueError, match="label 'w' is nested inside node 'op'"):
        inline_mutators(convert_to_graph(Nested()))
