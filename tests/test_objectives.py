import pytest
import torch

from dreamrun.errors import DreamError
from dreamrun.objectives import Term, check_channels, parse_target

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
