from dreamrun.config.run_names import MAX_LENGTH, slug


def test_overrides_make_a_readable_name():
    assert slug("octaves=4,target=mixed_6") == "octaves=4,target=mixed_6"
    assert slug("target.Mixed_6e=[12,45]") == "target.Mixed_6e=[12,45]"


def test_paths_and_traversal_cannot_escape_the_sweep_dir():
    name = slug("input.path=../../etc/passwd,x=a\\b")
    assert "/" not in name and "\\" not in name
    assert slug("..") == "defaults" and slug("") == "defaults"


def test_long_names_are_cut_but_stay_distinct():
    a = slug("target=" + "x" * 200 + ",seed=1")
    b = slug("target=" + "x" * 200 + ",seed=2")
    assert len(a) == len(b) == MAX_LENGTH
    assert a != b
