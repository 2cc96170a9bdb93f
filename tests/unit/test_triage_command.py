"""`dispatch triage`: the dry run a dispatcher or a rule author runs, on the shipped data."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cli.main import main


def test_the_warehouse_fire_sends_engines_and_an_ambulance_at_p1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["triage", "--explain", "--text", "公司仓库着火了,浓烟很大,有人被困"]) == 0
    out = capsys.readouterr().out
    assert "P1 fire, needs fire x2, medical x1" in out
    sent = [line.split()[0:2] for line in out.splitlines() if "part " in line]
    assert sent == [["fire-1", "fire"], ["fire-2", "fire"], ["medical-2", "medical"]]
    assert "commander: -" in out


def test_json_lines_in_one_object_per_line_out(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [
        {"text": "不是着火,是楼下烧烤摊的烟", "place_id": "res-xihe-old-street"},
        {
            "text": "化工厂罐区有黄烟,好几个人在咳嗽",
            "enterprise_id": "ent-runfeng",
            "source": "guard",
        },
        {"text": "ALM 07", "source": "sensor", "source_id": "smoke-qixing-w2"},
    ]
    stdin = io.StringIO("\n".join(json.dumps(line, ensure_ascii=False) for line in lines))
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["triage"]) == 0
    first, chemical, smoke = map(json.loads, capsys.readouterr().out.splitlines())
    assert (first["category"], first["priority"]) == ("unclassified", 2)
    assert first["plan"]["commander"]["needed"]
    assert [u["kind"] for u in first["plan"]["units"]] == ["patrol"]
    assert first["discounted"] == [
        {"keyword": "着火", "text": "着火", "at": 2, "discounted_by": "不是"}
    ]
    assert chemical["priority"] == 1
    parts = {u["part"]: u["unit_id"] for u in chemical["plan"]["units"]}
    assert parts["hazmat"] == "fire-2"  # the hazmat truck, not the water tender
    assert {"fire", "hazmat", "medical"} <= set(parts)
    assert chemical["plan"]["mutual_aid"]
    assert (smoke["category"], smoke["place"]["place_id"]) == ("fire", "ent-qixing")


def test_a_board_from_a_file_plans_with_those_units_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    board = tmp_path / "units.jsonl"
    board.write_text(
        '{"unit_id": "fire-1", "status": "available"}\n{"unit_id": "fire-2", "status": "busy"}\n',
        encoding="utf-8",
    )
    text = "公司仓库着火了,浓烟很大,有人被困"
    assert (
        main(["triage", "--units", str(board), "--place-id", "ent-hengtong", "--text", text]) == 0
    )
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert [u["unit_id"] for u in plan["units"]] == ["fire-1"]
    assert plan["commander"]["missing"] == {"fire": 1, "medical": 1}


def test_a_line_that_is_not_an_alarm_is_named_and_the_rest_go_on(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": ""}\nnot json\n{"text": "救命"}\n'))
    assert main(["triage"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["priority"] == 1
    assert "alarm 1" in captured.err
    assert "alarm 2" in captured.err
