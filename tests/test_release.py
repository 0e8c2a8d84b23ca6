"""release: `release --check` names what differs between exercises/ and a fresh release.

That exercises/ *is* a fresh release is checked once per `make test`, by the Makefile's
`python -m autograder release --check`; here only the comparison is tested, on copies,
without running nbgrader.
"""

import shutil

from autograder import release
from autograder.paths import EXERCISES


def test_a_hand_edit_is_caught(tmp_path):
    "Does --check name a released notebook that was edited by hand, one that is missing, and one no solution makes?"
    fresh, current = tmp_path / "fresh", tmp_path / "exercises"
    shutil.copytree(EXERCISES, fresh)
    shutil.copytree(EXERCISES, current)
    assert release.differences(fresh, current) == []
    edited = current / "data_infrastructure" / "training_data.ipynb"
    edited.write_text(edited.read_text().replace("NotImplementedError", "NotImplementedErr"))
    (current / "data_infrastructure" / "warehouse_queries.ipynb").unlink()
    (current / "serving" / "extra.ipynb").write_text("{}")
    assert release.differences(fresh, current) == [
        "exercises/data_infrastructure/training_data.ipynb (differs)",
        "exercises/data_infrastructure/warehouse_queries.ipynb (missing)",
        "exercises/serving/extra.ipynb (not in solutions/)",
    ]
    assert release.differences(fresh, tmp_path / "nowhere") == ["exercises/ (missing)"]
