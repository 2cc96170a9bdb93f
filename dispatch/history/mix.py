"""What the demo zone's two years hold: which alarms, where, when, and how they fell.

The mix follows the seed article (/work/shared/seed, docs/demo-history.md): robbery and theft
along National Road 316 and at the station square, disputes in the villages of Xihe Town (淅河镇)
for the mediation room, intrusion sensors and guards at the enterprises, incidents at school
gates, fires and injuries in the industrial parks; and the year-on-year fall it reports. Each
category's share of the first year and its factor for the second are chosen so that the
groups the article counts fall as it says (checked by tests/unit/test_seed_history_mix.py):

| group | categories | second year against the first |
| --- | --- | --- |
| all alarms (报警总量) | every category | -53.8 % |
| criminal cases (刑事案件) | robbery, theft, intrusion | -51 % |
| public-order cases (治安案件) | fight | -50.3 % |
| robbery and theft (两抢一盗) | robbery, theft | -30 % |

Every text here classifies as its scenario's category with the shipped rules (the same test).
Village names are illustrative, like the rest of the demo zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dispatch.events import Category, SensorKind, SourceKind
from dispatch.reports.definitions import CATEGORY_GROUPS

# The groups as the reports count them (dispatch.reports.definitions): one definition, so the
# demo history falls as the article says in the very figures `dispatch report` prints.
GROUPS: Mapping[str, frozenset[Category]] = MappingProxyType(
    {group.key: group.categories for group in CATEGORY_GROUPS}
)
# What the article reports for each group, and for all alarms, as second year / first year.
ARTICLE_RATIOS: Mapping[str, float] = MappingProxyType(
    {"all": 1 - 0.538, "criminal": 1 - 0.51, "public_order": 1 - 0.503, "robbery_theft": 0.70}
)

# Hours of the day (local time), relative weights 0..23.
ALL_DAY = (2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 7, 7, 8, 8, 8, 9, 10, 11, 11, 9, 6, 4)
DAYTIME = (0, 0, 0, 0, 0, 1, 2, 5, 9, 11, 11, 9, 6, 8, 11, 11, 10, 8, 5, 3, 2, 1, 1, 0)
EVENING = (5, 4, 2, 1, 1, 1, 1, 2, 3, 3, 4, 4, 4, 4, 4, 5, 6, 8, 10, 12, 13, 12, 10, 7)
NIGHT = (12, 13, 13, 12, 10, 7, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 7, 9, 11)
SCHOOL_GATE = (0, 0, 0, 0, 0, 0, 1, 12, 6, 1, 1, 5, 6, 2, 1, 2, 10, 12, 3, 0, 0, 0, 0, 0)
FLAT_YEAR = (1.0,) * 12


@dataclass(frozen=True, slots=True)
class Scenario:
    """One kind of alarm: who raises it, where, in what words, and how long it takes on scene.

    `places` are zone place ids or types (`type:school`); `villages` places the alarm at a
    village of those grids instead (a position and a name, no zone place). `sensor` makes the
    source a device of that kind at the place. Texts may hold `{place}`, the place's name.
    """

    category: Category
    weight: float
    sources: tuple[SourceKind, ...]
    texts: tuple[str, ...]
    places: tuple[str, ...] = ()
    villages: tuple[str, ...] = ()
    sensor: SensorKind | str | None = None
    hours: tuple[int, ...] = ALL_DAY
    school_days_only: bool = False
    # Minutes the first unit on scene spends there before it resolves the incident.
    on_scene_min: tuple[float, float] = (10.0, 40.0)
    # Share of these incidents a commander cancels after checking (false sensor alarms).
    cancelled: float = 0.0


@dataclass(frozen=True, slots=True)
class CategoryMix:
    """A category's share of the first year's alarms, its second-year factor, its seasons."""

    share: float
    factor: float
    # Relative weight of each month of the year, January first.
    season: tuple[float, ...] = FLAT_YEAR
    scenarios: tuple[Scenario, ...] = field(default=())


VILLAGES = (
    "黄土坡村",
    "柳树湾村",
    "王家畈村",
    "油坊岗村",
    "龙泉村",
    "石桥村",
    "杨家湾村",
    "新街村",
)
XIHE_GRIDS = ("xh-g01", "xh-g02", "xh-g03", "xh-g04")
G316 = ("g316-cd-west", "g316-cd-east", "g316-xh-west", "g316-xh-town")
STATION = ("station-square", "parking-station")
H, D, G, S = SourceKind.HOTLINE, SourceKind.DESK, SourceKind.GUARD, SourceKind.SENSOR


def _mix() -> dict[Category, CategoryMix]:
    c = Category
    # fmt: off
    mix = {
        c.THEFT: CategoryMix(
            0.12,
            0.70,
            season=(1.1, 1.4, 1.0, 0.9, 0.9, 0.9, 1.0, 1.0, 1.0, 1.1, 0.9, 0.9),
            scenarios=(
                Scenario(c.THEFT, 3, (H,), ("{place}有人钱包被偷了", "旅客在{place}手机被扒了"),
                         places=STATION, hours=ALL_DAY, on_scene_min=(15, 40)),
                Scenario(c.THEFT, 2, (H,), ("{place}边停着的货车上的货被人偷了",),
                         places=G316, hours=NIGHT, on_scene_min=(20, 50)),
                Scenario(c.THEFT, 2, (H,), ("{place}的电动车被盗", "{place}停车棚里电瓶被人偷走"),
                         places=("type:parking",), hours=EVENING, on_scene_min=(15, 35)),
                Scenario(c.THEFT, 2, (D, G), ("仓库门口有人偷电动车", "车间更衣室有员工手机被盗",
                         "厂区堆放的废旧钢材被人偷走"), places=("type:enterprise",),
                         hours=ALL_DAY, on_scene_min=(20, 45)),
                Scenario(c.THEFT, 1, (H,), ("{place}家里进了小偷,丢了现金和首饰",),
                         places=("type:residential",), hours=NIGHT, on_scene_min=(30, 60)),
            ),
        ),
        c.ROBBERY: CategoryMix(
            0.03,
            0.70,
            scenarios=(
                Scenario(c.ROBBERY, 3, (H,), ("{place}有人骑摩托车飞车抢包",
                         "{place}有人拦路抢钱后往城里方向跑了"), places=G316, hours=EVENING,
                         on_scene_min=(40, 90)),
                Scenario(c.ROBBERY, 2, (H,), ("{place}上有人抢手机后往东跑了",),
                         places=("station-square",), hours=EVENING, on_scene_min=(30, 80)),
                Scenario(c.ROBBERY, 1, (H,), ("{place}里一名女子的项链被抢走",),
                         places=("type:park",), hours=EVENING, on_scene_min=(30, 80)),
            ),
        ),
        c.INTRUSION: CategoryMix(
            0.20,
            0.3325,  # with robbery and theft at 0.70: criminal cases at 0.49
            season=(1.2, 1.1, 1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 1.1, 1.1),
            scenarios=(
                Scenario(c.INTRUSION, 5, (S,), ("防爬刺报警:围墙有人攀爬",),
                         places=("type:enterprise",), sensor=SensorKind.ANTI_CLIMB, hours=NIGHT,
                         on_scene_min=(5, 20), cancelled=0.10),
                Scenario(c.INTRUSION, 2, (S,), ("门锁异常开启报警",), places=("type:enterprise",
                         "type:residential"), sensor=SensorKind.LOCK, hours=NIGHT,
                         on_scene_min=(5, 20), cancelled=0.10),
                Scenario(c.INTRUSION, 1, (S,), ("家庭监控报警:室内有人闯入",),
                         places=("type:residential",), sensor=SensorKind.HOME_MONITOR,
                         hours=NIGHT, on_scene_min=(10, 30), cancelled=0.05),
                Scenario(c.INTRUSION, 2, (G, D), ("夜间有人翻墙进入厂区", "有陌生人闯入仓库"),
                         places=("type:enterprise",), hours=NIGHT, on_scene_min=(15, 40)),
            ),
        ),
        c.FIGHT: CategoryMix(
            0.08,
            0.497,
            season=(0.8, 0.9, 0.9, 1.0, 1.1, 1.2, 1.3, 1.2, 1.1, 1.0, 0.8, 0.7),
            scenarios=(
                Scenario(c.FIGHT, 3, (H,), ("{place}上两名男子打架",), places=STATION,
                         hours=EVENING, on_scene_min=(15, 40)),
                Scenario(c.FIGHT, 2, (H,), ("{place}里有人打架",), places=("type:park",),
                         hours=EVENING, on_scene_min=(15, 40)),
                Scenario(c.FIGHT, 2, (H,), ("学生在{place}校门口打架",), places=("type:school",),
                         hours=SCHOOL_GATE, school_days_only=True, on_scene_min=(10, 30)),
                Scenario(c.FIGHT, 2, (D, G), ("厂区门口两名员工打起来了",),
                         places=("type:enterprise",), hours=DAYTIME, on_scene_min=(15, 40)),
                Scenario(c.FIGHT, 1, (H,), ("{place}饭店门口有人喝醉了闹事打人",),
                         places=("type:residential",), hours=EVENING, on_scene_min=(20, 50)),
            ),
        ),
        c.SUSPICIOUS_PERSON: CategoryMix(
            0.10,
            0.4974,
            scenarios=(
                Scenario(c.SUSPICIOUS_PERSON, 3, (H,), ("{place}校门口有陌生人徘徊",
                         "放学时有人在{place}校门口尾随学生"), places=("type:school",),
                         hours=SCHOOL_GATE, school_days_only=True, on_scene_min=(10, 25)),
                Scenario(c.SUSPICIOUS_PERSON, 3, (S,), ("A类探头报警:发现可疑人员",),
                         places=("station-square", "type:park"), sensor=SensorKind.CAMERA_A,
                         hours=EVENING, on_scene_min=(5, 15), cancelled=0.15),
                Scenario(c.SUSPICIOUS_PERSON, 2, (S,), ("B类探头报警:发现可疑人员",),
                         places=("type:park", "type:parking"), sensor=SensorKind.CAMERA_B,
                         hours=EVENING, on_scene_min=(5, 15), cancelled=0.25),
                Scenario(c.SUSPICIOUS_PERSON, 2, (D, G), ("门口有可疑人员来回徘徊",),
                         places=("type:enterprise",), hours=NIGHT, on_scene_min=(10, 25)),
            ),
        ),
        c.DISPUTE: CategoryMix(
            0.14,
            0.35,
            season=(1.3, 1.5, 1.0, 0.9, 0.9, 1.0, 1.0, 0.9, 1.1, 1.0, 0.9, 1.1),
            scenarios=(
                Scenario(c.DISPUTE, 6, (H,), ("{place}两户村民因宅基地发生纠纷",
                         "{place}邻里因为排水的事吵起来了", "{place}村民因土地承包发生争执"),
                         villages=XIHE_GRIDS, hours=DAYTIME, on_scene_min=(40, 150)),
                Scenario(c.DISPUTE, 2, (D,), ("工人因工资问题与管理人员发生纠纷",),
                         places=("type:enterprise",), hours=DAYTIME, on_scene_min=(40, 120)),
                Scenario(c.DISPUTE, 1, (H,), ("{place}楼上装修噪音扰民,邻居吵起来了",),
                         places=("type:residential",), hours=EVENING, on_scene_min=(20, 60)),
            ),
        ),
        c.TRAFFIC: CategoryMix(
            0.08,
            0.50,
            scenarios=(
                Scenario(c.TRAFFIC, 4, (H,), ("{place}两辆小车追尾,堵住了车道",), places=G316,
                         hours=DAYTIME, on_scene_min=(20, 50)),
                Scenario(c.TRAFFIC, 2, (H,), ("{place}货车和电动车相撞,有人受伤",),
                         places=G316, hours=EVENING, on_scene_min=(30, 80)),
                Scenario(c.TRAFFIC, 1, (H,), ("{place}倒车撞到了别人的车",),
                         places=("type:parking",), hours=DAYTIME, on_scene_min=(15, 30)),
            ),
        ),
        c.FIRE: CategoryMix(
            0.04,
            0.50,
            season=(1.6, 1.5, 1.2, 1.0, 0.8, 0.7, 0.7, 0.7, 0.8, 1.0, 1.3, 1.7),
            scenarios=(
                Scenario(c.FIRE, 4, (D, G), ("仓库冒烟起火,火势不大", "配电房着火了"),
                         places=("type:enterprise",), hours=DAYTIME, on_scene_min=(40, 150)),
                Scenario(c.FIRE, 2, (S,), ("烟感报警:检测到烟雾",), places=("type:enterprise",),
                         sensor="smoke", hours=ALL_DAY, on_scene_min=(15, 60), cancelled=0.10),
                Scenario(c.FIRE, 1, (H,), ("{place}一家门面着火了,冒黑烟",),
                         places=("type:residential",), hours=EVENING, on_scene_min=(40, 120)),
            ),
        ),
        c.MEDICAL: CategoryMix(
            0.06,
            0.80,
            season=(1.0, 1.0, 1.0, 1.0, 1.1, 1.3, 1.4, 1.3, 1.1, 1.0, 0.9, 0.9),
            scenarios=(
                Scenario(c.MEDICAL, 3, (D, G), ("员工从货架上摔下来受伤,需要救护车",
                         "车间有工人中暑晕倒", "工人的手被机器压住了,流了很多血"),
                         places=("type:enterprise",), hours=DAYTIME, on_scene_min=(10, 30)),
                Scenario(c.MEDICAL, 2, (H,), ("{place}里有老人晕倒",), places=("type:park",),
                         hours=DAYTIME, on_scene_min=(10, 25)),
            ),
        ),
        c.HAZARD: CategoryMix(
            0.03,
            0.35,
            scenarios=(
                Scenario(c.HAZARD, 1, (S,), ("可燃气体浓度超标报警",), places=("ent-runfeng",),
                         sensor="gas", hours=ALL_DAY, on_scene_min=(20, 90), cancelled=0.10),
                Scenario(c.HAZARD, 2, (H,), ("{place}路边电线掉下来了", "{place}路中间的井盖没了"),
                         places=G316, hours=ALL_DAY, on_scene_min=(20, 90)),
                Scenario(c.HAZARD, 1, (H,), ("{place}有股很浓的刺鼻气味",),
                         villages=XIHE_GRIDS, hours=DAYTIME, on_scene_min=(30, 90)),
            ),
        ),
        c.HELP_REQUEST: CategoryMix(
            0.06,
            0.35,
            scenarios=(
                Scenario(c.HELP_REQUEST, 2, (H,), ("{place}有位老人走失了,家人在找",
                         "{place}有个老人迷路找不到家"), villages=XIHE_GRIDS, hours=DAYTIME,
                         on_scene_min=(30, 90)),
                Scenario(c.HELP_REQUEST, 1, (H,), ("{place}有人被困在电梯里",),
                         places=("type:residential",), hours=ALL_DAY, on_scene_min=(20, 50)),
            ),
        ),
    }
    # Found items, fraud, poaching: what is left of the fall of all alarms falls here.
    rest = ARTICLE_RATIOS["all"] - sum(m.share * m.factor for m in mix.values())
    mix[c.OTHER] = CategoryMix(
        0.06,
        rest / 0.06,
        scenarios=(
                Scenario(c.OTHER, 2, (H,), ("在{place}捡到一个钱包",), places=STATION,
                         hours=ALL_DAY, on_scene_min=(10, 20)),
                Scenario(c.OTHER, 2, (H,), ("{place}有人接到诈骗电话被骗了两千元",),
                         places=("type:residential",), hours=DAYTIME, on_scene_min=(20, 40)),
                Scenario(c.OTHER, 1, (H,), ("{place}有人在河里电鱼",),
                         places=("park-xihe-riverside",), hours=DAYTIME, on_scene_min=(15, 30)),
            ),
        )
    # fmt: on
    return mix


MIX: Mapping[Category, CategoryMix] = MappingProxyType(_mix())
