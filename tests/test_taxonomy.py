from mmstar import taxonomy


def test_six_capabilities_eighteen_axes_exact_strings():
    assert taxonomy.CODES == ("CP", "FP", "IR", "LR", "ST", "MA")
    assert len(taxonomy.AXIS_NAMES) == 18 and len(set(taxonomy.AXIS_NAMES)) == 18
    assert taxonomy.capability("ST").axis_names == (
        "biology & chemistry & physics",
        "electronics & energy & mechanical eng.",
        "geography & earth science & agriculture",
    )
    assert taxonomy.capability("math").code == "MA"


def test_display_names_follow_the_paper():
    assert taxonomy.display_name("recognition") == "attribute & celebrity recognition"
    assert taxonomy.display_name("localization") == "object location"
    assert taxonomy.display_name("statistical reasoning") == "statistical analysis"
    assert taxonomy.display_name("biology & chemistry & physics") == "natural science"
    assert taxonomy.display_name("something else") == "something else"


def test_check_labels():
    assert taxonomy.check_labels("math", "geometry") == []
    assert "unknown category" in taxonomy.check_labels("maths", "geometry")[0]
    assert "unknown l2_category" in taxonomy.check_labels("math", "algebra")[0]
    (msg,) = taxonomy.check_labels("math", "recognition")
    assert "belongs to 'fine-grained perception'" in msg


def test_detects_mmstar_taxonomy():
    assert taxonomy.looks_like_mmstar([("math", "geometry"), ("coarse perception", "image emotion")])
    assert not taxonomy.looks_like_mmstar([("attribute_recognition", "x"), ("ocr", "y")])
    assert not taxonomy.looks_like_mmstar([])
