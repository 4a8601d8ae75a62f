"""Graph IR and the Mutator API on a hand-built graph (spec §13 item 3)."""
import pytest

from nni.retiarii import Graph, IllegalGraphError, InvalidMutation, Model, ModelStatus, Mutator, Node, Operation, Sampler
from nni.retiarii.graph import Cell


def split_concat_model():
    """The docs' example: a, b, c = split(x); p = concat(a, c); q = sum(b, p); z = relu(q)."""
    model = Model(_internal=True)
    graph = Graph.new(model, "_model", input_names=["x"], output_names=["z"])
    split = graph.add_node("split", "Split", {"chunks": 3})
    concat = graph.add_node("concat", "Concat", {"dim": 1}, label="merge")
    add = graph.add_node("sum", "Sum", label="merge")
    relu = graph.add_node("relu", "ReLU")
    graph.add_edge((graph.input_node, None), (split, None))
    graph.add_edge((split, 0), (concat, 0))
    graph.add_edge((split, 2), (concat, 1))
    graph.add_edge((split, 1), (add, -1))
    graph.add_edge((concat, None), (add, -1))
    graph.add_edge((add, None), (relu, None))
    graph.add_edge((relu, None), (graph.output_node, None))
    return model.freeze()


def test_graph_structure_and_edge_slots():
    model = split_concat_model()
    graph = model.root_graph
    assert graph is model.graphs["_model"] and graph.input_names == ["x"] and graph.output_names == ["z"]
    split, concat, add = (graph.get_node_by_name(n) for n in ("split", "concat", "sum"))
    assert [(e.head_slot, e.tail.name, e.tail_slot) for e in split.outgoing_edges] == [(0, "concat", 0), (2, "concat", 1), (1, "sum", -1)]
    assert concat.predecessors == [split] and split.successors == [concat, add]
    assert add.predecessors == [split, concat] and len(add.incoming_edges) == 2
    assert [n.name for n in graph.topo_sort()] == ["_inputs", "split", "concat", "sum", "relu", "_outputs"]
    assert graph.get_node_by_id(split.id) is split and graph.get_node_by_name("nope") is None
    assert [n.name for n in graph.get_nodes_by_type("ReLU")] == ["relu"]
    assert len(graph.nodes) == 6 and len(graph.hidden_nodes) == 4 and len(graph.edges) == 7


def test_model_lookups():
    model = split_concat_model()
    assert [n.name for n in model.get_nodes_by_label("merge")] == ["concat", "sum"]
    assert [n.name for n in model.get_nodes_by_type("Split")] == ["split"]
    assert model.get_node_by_name("relu").operation == Operation.new("ReLU")
    assert len(model.get_nodes()) == 6


def test_graph_errors():
    model = split_concat_model()
    graph = model.root_graph
    with pytest.raises(IllegalGraphError, match="already exists"):
        graph.add_node("split", "Split")
    other = Graph.new(model, "other")
    with pytest.raises(IllegalGraphError, match="both ends"):
        graph.add_edge((graph.input_node, None), (other.output_node, None))
    with pytest.raises(IllegalGraphError, match="remove its edges"):
        graph.get_node_by_name("relu").remove()
    with pytest.raises(RuntimeError, match="internal"):
        Model()
    with pytest.raises(RuntimeError, match="internal"):
        Operation("Conv2d")
    with pytest.raises(RuntimeError, match="internal"):
        Node(graph, 1, "n", Operation.new("X"))


def test_fork_keeps_topology_names_and_ids_but_shares_nothing_mutable():
    model = split_concat_model()
    forked = model.fork()
    assert forked.status == ModelStatus.Mutating and model.status == ModelStatus.Frozen
    old, new = model.root_graph, forked.root_graph
    assert new is not old and new.id == old.id and new.name == old.name
    assert [(n.id, n.name, n.label, n.operation) for n in new.nodes] == [(n.id, n.name, n.label, n.operation) for n in old.nodes]
    assert [(e.head.id, e.head_slot, e.tail.id, e.tail_slot) for e in new.edges] == \
           [(e.head.id, e.head_slot, e.tail.id, e.tail_slot) for e in old.edges]
    new.get_node_by_name("relu").update_operation("Tanh")
    new.add_node("extra", "Identity")
    assert old.get_node_by_name("relu").operation.type == "ReLU" and old.get_node_by_name("extra") is None
    with pytest.raises(RuntimeError, match="only a frozen model can be forked"):
        forked.fork()
    assert old.fork().model is not model


def test_cells_and_specialize():
    model = Model(_internal=True)
    root = Graph.new(model, "_model")
    template = Graph.new(model, "block")
    template.add_node("conv", "Conv2d", {"kernel_size": 3})
    a = root.add_node("a", Operation.new("_cell", cell_name="block"))
    b = root.add_node("b", Operation.new("_cell", cell_name="block"))
    assert isinstance(a.operation, Cell) and a.cell is template and b.cell is template
    copy = a.specialize_cell()
    assert a.cell is copy and b.cell is template and copy.id != template.id
    copy.get_node_by_name("conv").update_operation("Conv2d", {"kernel_size": 5})
    assert template.get_node_by_name("conv").operation.parameters == {"kernel_size": 3}
    with pytest.raises(TypeError, match="not a cell"):
        copy.get_node_by_name("conv").cell
    with pytest.raises(ValueError, match="needs cell_name"):
        Operation.new("_cell")


class OpMutator(Mutator):
    """The docs' BlockMutator: replace every node labelled ``label`` with a chosen operation."""

    def __init__(self, target, candidates):
        super().__init__(label=target)
        self.candidates = candidates

    def mutate(self, model):
        for node in model.get_nodes_by_label(self.label):
            chosen = self.choice(self.candidates)
            node.update_operation(chosen.type, chosen.parameters)


class ScriptedSampler(Sampler):
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def choice(self, candidates, mutator, model, index):
        self.calls.append((len(candidates), mutator.label, index))
        return candidates[self.answers.pop(0)]


def test_apply_copies_and_leaves_the_original_unchanged():
    model = split_concat_model()
    candidates = [Operation.new("Add"), Operation.new("Mul"), Operation.new("Max")]
    sampler = ScriptedSampler([2, 1])
    mutator = OpMutator("merge", candidates)
    assert mutator.bind_sampler(sampler) is mutator
    mutated = mutator.apply(model)
    assert [n.operation.type for n in mutated.get_nodes_by_label("merge")] == ["Max", "Mul"]
    assert [n.operation.type for n in model.get_nodes_by_label("merge")] == ["Concat", "Sum"]
    assert sampler.calls == [(3, "merge", 0), (3, "merge", 1)]
    assert mutated.status == ModelStatus.Frozen and model.history == []
    assert len(mutated.history) == 1 and mutated.history[0].from_model is model and mutated.history[0].to_model is mutated
    assert [op.type for op in mutated.history[0].samples] == ["Max", "Mul"]
    again = OpMutator("merge", candidates).bind_sampler(ScriptedSampler([0, 0])).apply(mutated)
    assert len(again.history) == 2 and again.history[0].from_model is model


def test_dry_run_returns_the_candidate_lists():
    model = split_concat_model()
    candidates = [Operation.new("Add"), Operation.new("Mul")]
    mutator = OpMutator("merge", candidates)
    recorded, new_model = mutator.dry_run(model)
    assert recorded == [candidates, candidates]
    assert [n.operation.type for n in new_model.get_nodes_by_label("merge")] == ["Add", "Add"]
    assert mutator.sampler is None
    assert OpMutator("nothing", candidates).dry_run(model)[0] == []


def test_mutator_misuse_errors():
    model = split_concat_model()
    with pytest.raises(RuntimeError, match="no sampler is bound"):
        OpMutator("merge", [Operation.new("Add")]).apply(model)
    with pytest.raises(RuntimeError, match="only callable while"):
        OpMutator("merge", [1]).choice([1, 2])
    with pytest.raises(TypeError):
        Mutator()  # mutate is abstract


def test_invalid_mutation_propagates_and_the_original_stays_frozen():
    class Picky(Mutator):
        def mutate(self, model):
            if self.choice([1, 2]) == 2:
                raise InvalidMutation("2 is not allowed with this topology")

    model = split_concat_model()
    with pytest.raises(InvalidMutation, match="not allowed"):
        Picky(ScriptedSampler([1])).apply(model)
    assert model.status == ModelStatus.Frozen
    assert Picky(ScriptedSampler([0])).apply(model).history[-1].samples == [1]
