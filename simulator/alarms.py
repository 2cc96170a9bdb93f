"""Realistic alarms at the zone's places, reproducible from a seed.

A simple generator for now (issue 13 brings the day's rhythm and the seed article's mix):
desks report at their own enterprise, the hotline anywhere in the zone, registered devices
at their mount points; texts are what callers in the zone would say, in Chinese.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dispatch.events import PlaceType
from dispatch.zone import Place, Zone

# What a desk says of its own enterprise: theft, fights, disputes, fire, intrusion, injuries.
AT_ENTERPRISES = (
    "仓库门口有人偷电动车",
    "车间更衣室有员工手机被盗",
    "厂区门口两名男子打架,有人流血",
    "食堂里员工吵架动手了",
    "工人因工资问题与管理人员发生纠纷",
    "仓库冒烟起火,火势不大,请求支援",
    "配电房着火了",
    "有人翻墙进入厂区",
    "夜间有陌生人闯入仓库",
    "门口有可疑人员来回徘徊",
    "员工从货架上摔下来受伤,需要救护车",
)
# What the hotline hears from the street, by kind of place.
ELSEWHERE: dict[PlaceType, tuple[str, ...]] = {
    PlaceType.ROAD: ("两车相撞,有人受伤", "路边有人抢包后骑车逃跑", "有人在路边打架"),
    PlaceType.STATION_SQUARE: ("广场上有人抢手机", "有人在广场上偷钱包", "旅客之间发生争吵"),
    PlaceType.PARK: ("公园里有老人晕倒", "有人在公园里打架", "湖边有小孩落水"),
    PlaceType.SCHOOL: ("校门口有陌生人徘徊", "学生在校门口打架", "放学时有人纠缠学生"),
    PlaceType.RESIDENTIAL: ("邻居吵架打起来了", "楼道里有烟味,可能着火了", "有人撬门入室盗窃"),
    PlaceType.PARKING: ("停车场有人撬车门偷东西", "两人因停车位发生纠纷"),
}
# What a registered device reports, by its kind (docs/zone.md, [[devices]]).
FROM_DEVICES = {
    "smoke": "烟感报警:检测到烟雾",
    "gas": "可燃气体浓度超标报警",
    "anti_climb": "防爬刺报警:围墙有人攀爬",
    "lock": "门锁异常开启报警",
    "home_monitor": "家庭监控报警:室内有人闯入",
    "camera_a": "A类探头报警:人员聚集冲突",
    "camera_b": "B类探头报警:发现可疑人员",
}
SURNAMES = "王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗"
GIVEN = ("伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明")
SPOTS = ("1号门", "2号门", "北门", "东侧围墙", "3号仓库", "办公楼前", "停车棚")


@dataclass(frozen=True)
class SensorAlarm:
    """What a device writes: its source id and its text (the zone knows where it is)."""

    source_id: str
    text: str


class AlarmMaker:
    """Make alarms at the zone's places from a seed: the same seed, the same alarms."""

    def __init__(self, zone: Zone, seed: int) -> None:
        self.zone = zone
        self.rng = random.Random(seed)
        self.street = [p for p in zone.places if p.type in ELSEWHERE]
        self.devices = [d for d in zone.devices if d.kind in FROM_DEVICES]

    def _near(self, place: Place, within_m: float = 150.0) -> dict[str, float]:
        lat_m, lon_m = 111_320.0, 94_800.0  # metres per degree at the zone's latitude
        return {
            "lat": round(place.position.lat + self.rng.uniform(-within_m, within_m) / lat_m, 6),
            "lon": round(place.position.lon + self.rng.uniform(-within_m, within_m) / lon_m, 6),
            "accuracy_m": float(self.rng.choice((5, 10, 15, 30))),
        }

    def _caller(self) -> dict[str, str]:
        name = self.rng.choice(SURNAMES) + "".join(self.rng.choices(GIVEN, k=2))
        phone = f"+86 13{self.rng.randint(0, 9)} {self.rng.randint(1000, 9999)} "
        return {"reporter_name": name, "reporter_phone": phone + str(self.rng.randint(1000, 9999))}

    def desk_alarm(self, enterprises: Sequence[str]) -> tuple[str, dict[str, Any]]:
        """Return an enterprise of the given ones and the body its desk posts."""
        enterprise_id = self.rng.choice(list(enterprises))
        place = self.zone.place(enterprise_id)
        body: dict[str, Any] = {
            "text": self.rng.choice(AT_ENTERPRISES),
            "place_id": place.id,
            "place_name": self.rng.choice(SPOTS),
            "position": self._near(place),
        }
        return enterprise_id, body | self._caller()

    def hotline_alarm(self) -> dict[str, Any]:
        """Return the body the hotline posts for a call about a street, park, school or home."""
        place = self.rng.choice(self.street)
        text = place.name + self.rng.choice(ELSEWHERE[place.type])
        body = {"text": text, "place_id": place.id, "position": self._near(place, 300.0)}
        return body | self._caller()

    def sensor_alarm(self) -> SensorAlarm:
        """Return what one of the zone's registered devices reports."""
        device = self.rng.choice(self.devices)
        return SensorAlarm(device.id, FROM_DEVICES[device.kind])
