import pandas as pd
import pytest

from dfkd_lib.comparison import claims_table, rank_agreement


def test_rank_agreement_by_hand():
    paper = pd.Series({"A": 1.0, "B": 2.0, "C": 3.0, "D": 4.0})
    assert rank_agreement(pd.Series({"A": 10.0, "B": 20.0, "C": 30.0, "D": 40.0}), paper)[0] == pytest.approx(1.0)
    assert rank_agreement(pd.Series({"A": 4.0, "B": 3.0, "C": 2.0, "D": 1.0}), paper)[0] == pytest.approx(-1.0)
    # one swap of neighbours among four: rho = 1 - 6 * 2 / (4 * 15) = 0.8
    rho, both = rank_agreement(pd.Series({"A": 1.0, "B": 3.0, "C": 2.0, "D": 4.0, "X": 9.0}), paper)
    assert rho == pytest.approx(0.8) and both == ["A", "B", "C", "D"]
    assert rank_agreement(pd.Series({"A": 1.0, "B": float("nan"), "X": 2.0}), paper) == (None, ["A"])


def test_claims_table_by_hand():
    rows = [("dfad", "d", 0, 40.0), ("dfad", "d", 1, 44.0),         # no prior, mean 42
            ("dafl", "d", 0, 30.0),                                  # no prior, 30
            ("dfq", "d", 0, 50.0), ("dfq", "d", 1, 52.0),           # prior, 51
            ("dfkd_fgvc", "d", 0, 41.0),                             # prior, 41
            ("real_kd", "d", 0, 99.0),                               # reference, left out
            ("dfad", "e", 0, 10.0)]
    results = pd.DataFrame(rows, columns=["variant", "dataset", "seed", "best"])
    methods = {"dfad": "dfad", "dafl": "dafl", "dfq": "dfq", "dfkd_fgvc": "dfkd-fgvc", "real_kd": "real-kd"}
    t = claims_table(results, methods, focus="dfkd_fgvc", exclude=("real_kd",))
    d = t.loc["d"]
    assert d["prior_mean"] == pytest.approx(46.0) and d["no_prior_mean"] == pytest.approx(36.0)
    assert d["gap"] == pytest.approx(10.0)
    assert d["pairs_won"] == "3/4"                   # 51 > 42, 51 > 30, 41 < 42, 41 > 30
    assert d["focus_rank"] == "3 of 4" and d["methods"] == 4
    e = t.loc["e"]
    assert e["focus_rank"] == "-" and e["pairs_won"] == "0/0" and pd.isna(e["prior_mean"])
    with pytest.raises(KeyError, match="not registered methods: nope"):
        claims_table(results, {"dfad": "nope"}, focus="dfad")
