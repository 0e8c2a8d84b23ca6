"""The data-infrastructure chapter: each typical mistake loses exactly its points, and a visible test catches it."""

from tests.helpers import typical_mistakes_tests

CHAPTER = "data_infrastructure"

# student: (exercise, part, (old, new) text edits, the tests that must fail, by description start).
# Each is a mistake that the chapter's lessons or the notebook's text warn about.
MISTAKES = {
    "chargebacks_inner_joined": (
        "warehouse_queries",
        "fraud_rate_by_category",
        [("LEFT JOIN chargebacks AS c USING (transaction_id)", "JOIN chargebacks AS c USING (transaction_id)")],
        ["Returns one row per category", "Counts payments and chargebacks"],
    ),
    "label_left_a_bool": (
        "warehouse_queries",
        "time_split",
        [(" AND c.reported_at < $train_end))::INTEGER AS label", " AND c.reported_at < $train_end)) AS label")],
        ["Keeps training rows before the maturity gap", "Labels training rows only", "Matches an independent computation"],
    ),
    "split_returned_as_a_list": (
        "warehouse_queries",
        "time_split",
        [("    return train, test\n", "    return [train, test]\n")],
        ["Keeps training rows before the maturity gap", "Labels training rows only", "Matches an independent computation"],
    ),
}


graded_mistakes, test_a_typical_mistake_loses_exactly_its_points = typical_mistakes_tests(CHAPTER, MISTAKES)
