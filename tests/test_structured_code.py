"""The structured-code chapter: each typical mistake loses exactly its points, and a visible test catches it."""

from tests.helpers import typical_mistakes_tests

CHAPTER = "structured_code"

# student: (exercise, part, (old, new) text edits, the tests that must fail, by description start).
# Each mistake is one that the chapter's lessons or hints warn about, and a visible test catches it.
MISTAKES = {
    "config_ignores_a_misspelt_key": (
        "config_and_registry",
        "load_config",
        [("raise ConfigError(f\"unknown key {name}.{key}; [{name}] has {', '.join(keys)}\")", "continue")],
        ["Refuses a misspelt key"],
    ),
    "config_takes_a_bool_for_an_int": (
        "config_and_registry",
        "load_config",
        [("if type(value) is not kind:", "if not isinstance(value, kind):")],
        ["Refuses a misspelt key"],
    ),
    "override_reads_any_text_as_true": (
        "config_and_registry",
        "apply_override",
        [
            (
                "if kind is bool:\n"
                '            if text.lower() not in ("true", "false"):\n'
                "                raise ValueError(text)\n"
                '            value = text.lower() == "true"\n'
                "        else:\n"
                "            value = kind(text)",
                "value = kind(text)",
            )
        ],
        ["Reads the value as the key's type", "Accepts true/false in any case"],
    ),
    "registry_entries_in_the_class": (
        "config_and_registry",
        "registry",
        [
            ("self._entries: dict[str, object] = {}", "self._entries = Registry.shared"),
            (
                'by name, so that a config can name them."""',
                'by name, so that a config can name them."""\n\n    shared: dict = {}',
            ),
        ],
        ["An unknown name raises ConfigError", "Refuses a second component"],
    ),
    "compare_on_the_means_alone": (
        "config_and_registry",
        "compare_runs",
        [("if abs(difference) > 2 * stderr:", "if difference != 0:")],
        ["Picks the config whose mean is lower"],
    ),
    "compare_with_the_population_variance": (
        "config_and_registry",
        "compare_runs",
        [("math.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))", "math.sqrt(x.var() / len(x) + y.var() / len(y))")],
        ["Picks the config whose mean is lower", "Uses each config's own variance"],
    ),
}


graded_mistakes, test_a_typical_mistake_loses_exactly_its_points = typical_mistakes_tests(CHAPTER, MISTAKES)
