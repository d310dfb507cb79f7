import pytest
import torch

from dreamrun.core.objectives import Term, check_channels, guide_match, guided, parse_target
from dreamrun.errors import DreamError

LAYERS = ["a", "b"]
ACTS = {"a": torch.arange(2 * 3 * 2 * 2, dtype=torch.float).view(2, 3, 2, 2), "b": torch.ones(1, 4, 3, 3)}


def test_all_channels_is_the_mean_square_of_the_layer():
    objective = parse_target({"a": "all"}, LAYERS)
    assert objective(ACTS).item() == pytest.approx(ACTS["a"].pow(2).mean().item())


def test_channel_list_selects_those_channels():
    objective = parse_target({"a": [0, 2]}, LAYERS)
    assert objective(ACTS).item() == pytest.approx(ACTS["a"][:, [0, 2]].pow(2).mean().item())


def test_weighted_entries_and_sums():
    objective = parse_target({"a": {"channels": [1], "weight": 0.5}, "b": "all"}, LAYERS)
    expected = 0.5 * ACTS["a"][:, [1]].pow(2).mean() + 1.0
    assert objective(ACTS).item() == pytest.approx(expected.item())
    assert set(objective.activations(ACTS)) == {"a[1]", "b"}


def test_objectives_compose_like_numbers():
    combined = Term("a") + 0.5 * Term("b") - Term("a", (0,))
    expected = ACTS["a"].pow(2).mean() + 0.5 - ACTS["a"][:, [0]].pow(2).mean()
    assert combined(ACTS).item() == pytest.approx(expected.item())


@pytest.mark.parametrize("target, message", [
    ({}, "empty"),
    ({"zz": "all"}, "unknown layer 'zz'.*valid layers: a, b"),
    ({"a": [-1]}, "not a non-negative integer"),
    ({"a": [1, 1]}, "duplicates"),
    ({"a": []}, "channel list is empty"),
    ({"a": "some"}, "must be 'all'"),
    ({"a": {"channel": [1]}}, "unknown key"),
    ({"a": {"weight": "heavy"}}, "weight must be a number"),
])
def test_bad_targets_are_refused_with_a_message(target, message):
    with pytest.raises(DreamError, match=message):
        parse_target(target, LAYERS)


def test_channel_out_of_range_names_the_channel_count():
    objective = parse_target({"b": [3, 4]}, LAYERS)
    with pytest.raises(DreamError, match="channel 4 is out of range: b has 4 channels"):
        check_channels(objective, {"b": 4})


CLASSES = ["tench", "goldfish", "great white shark"]


@pytest.mark.parametrize("reduction, expected", [
    ("mean_square", ACTS["a"].pow(2).mean()),
    ("l2", ACTS["a"].pow(2).mean().sqrt()),
    ("mean", ACTS["a"].mean()),
])
def test_reduction_chooses_how_a_layer_becomes_a_number(reduction, expected):
    objective = parse_target({"a": {"reduction": reduction, "weight": 2}}, LAYERS)
    assert objective(ACTS).item() == pytest.approx(2 * expected.item())


def test_classes_are_logits_by_index_or_name_and_default_to_their_mean():
    logits = {"logits": torch.tensor([[1.0, -4.0, 3.0]])}
    objective = parse_target({"logits": {"classes": ["Goldfish", 2]}}, ["logits"], CLASSES)
    assert objective.terms[0].channels == (1, 2)
    assert objective(logits).item() == pytest.approx(-0.5)


@pytest.mark.parametrize("target, message", [
    ({"logits": {"classes": ["goldfsh"]}}, "unknown class 'goldfsh'; did you mean goldfish"),
    ({"logits": {"classes": [1], "channels": [1]}}, "classes or channels, not both"),
    ({"a": {"classes": [1]}}, "unknown key.*classes"),
    ({"a": {"reduction": "max"}}, "unknown 'max'; use mean_square, l2, mean"),
])
def test_bad_class_and_reduction_targets_are_refused(target, message):
    with pytest.raises(DreamError, match=message):
        parse_target(target, LAYERS + ["logits"], CLASSES)


def test_class_names_need_a_model_with_categories():
    with pytest.raises(DreamError, match="no class names"):
        parse_target({"logits": {"classes": ["goldfish"]}}, ["logits"], None)


def test_guide_match_is_the_best_dot_product_per_position_and_its_gradient_that_guide_vector():
    guide = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # (C=2, M=2): two unit guide vectors
    features = torch.tensor([[3.0, 0.5], [1.0, 2.0]]).view(1, 2, 1, 2).requires_grad_(True)  # positions (3,1), (.5,2)
    match = guide_match(features, guide)
    assert match.item() == pytest.approx((3.0 + 2.0) / 2 / 2)
    match.backward()
    # position 0 best matches guide vector 0, position 1 guide vector 1
    assert torch.allclose(features.grad.view(2, 2), torch.tensor([[1.0, 0.0], [0.0, 1.0]]) / 4)


def test_guided_objective_matches_each_term_against_the_guide_features():
    guide_acts = {"a": torch.rand(1, 3, 2, 2), "b": torch.rand(1, 4, 3, 3)}
    objective = guided(parse_target({"a": [0, 2], "b": "all"}, LAYERS), guide_acts)
    assert [t.name for t in objective.terms] == ["a[0,2]~guide", "b~guide"]
    expected = guide_match(ACTS["a"][:, [0, 2]], guide_acts["a"][0, [0, 2]].flatten(1)) + guide_match(
        ACTS["b"], guide_acts["b"][0].flatten(1))
    assert objective(ACTS).item() == pytest.approx(expected.item())


def test_scaling_and_negating_a_term_keeps_its_reduction():
    scaled = -0.5 * Term("a", reduction="mean")
    assert [(t.reduction, t.weight) for t in scaled.terms] == [("mean", -0.5)]
    assert scaled(ACTS).item() == pytest.approx(-0.5 * ACTS["a"].mean().item())


def test_channels_are_selected_with_an_index_made_once():
    """A Python list as an index is a new tensor copied to the device at every use: on a GPU, a wait for
    the host at every step and tile. The index is made once per device and reused."""
    from collections import Counter

    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops[str(func.overloadpacket)] += 1
            return func(*args, **(kwargs or {}))

    acts = {"a": torch.randn(2, 8, 5, 5)}
    scattered, run = Term("a", channels=(6, 1, 3)), Term("a", channels=(2, 3, 4))
    assert torch.equal(scattered.select(acts), acts["a"][:, [6, 1, 3]])  # the reference: list indexing
    assert torch.equal(run.select(acts), acts["a"][:, 2:5])
    with Ops() as counted:
        scattered.select(acts)
        run.select(acts)
    assert dict(counted.ops) == {"aten.index_select": 1, "aten.slice": 1}
