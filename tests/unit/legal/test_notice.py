"""The public notice (issue 15 item 8): every element GDPR art. 12-13 and the CNIL ask for, in
French and English, Markdown and HTML, for several declarations; what is missing is said to be
undeclared; config-derived strings cannot inject markup; the default language rule."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from typing import Any

import pytest

from edge.config import (
    CameraConfig,
    DashboardConfig,
    DeploymentConfig,
    LineConfig,
    RecipientsConfig,
    ZoneConfig,
    load_settings,
)
from edge.errors import ConfigError
from edge.legal.notice import (
    CNIL_COMPLAINT_URL,
    LANGS,
    NEVER,
    TEXTS,
    InForce,
    Lang,
    default_lang,
    notice_sections,
    render_notice,
    render_notice_for,
)
from edge.legal.policy import DEFAULT_POLICY, Policy, load_policy
from edge.schema import NoticeMessage
from tests.conftest import EXAMPLE, REPO
from tests.support.cli import edge

POLICY = load_policy(REPO / DEFAULT_POLICY)
STRICT = load_policy(REPO / "policies" / "cnil-statistics-strict.yaml")
FORMATS = ("md", "html")

# What the notice must say whatever the declaration, as the reader sees it in each language.
REQUIRED: dict[Lang, tuple[str, ...]] = {
    "en": (
        "Controller:",
        "Purpose:",
        "Legal basis:",
        "Counting lines: each crossing of a line is counted per direction",
        "Zones: the number of objects present",
        "averaged over the period and at its peak",
        "follows it from image to image while it is in view (usually a few seconds), in "
        "memory only",
        "never stored, never published and never linked to an identity",
        "no image is ever stored or transmitted",
        "Who receives the counts",
        "Message broker (MQTT)",
        "Footfall dashboard:",
        "Open-data portal:",
        "How long",
        "Published counts are kept by the controller for",
        "Your rights",
        "cannot be linked to any person",
        "apply to the processing itself",
        "object to it",
        "To exercise your rights",
        "Data protection officer:",
        f"complaint with the CNIL: {CNIL_COMPLAINT_URL}",
        "Policy in force:",
        "Camera ",
    ),
    "fr": (
        "Responsable du traitement :",
        "Finalité :",
        "Base légale :",
        "Lignes de comptage : chaque franchissement d'une ligne est compté par sens",
        "Zones : le nombre d'objets présents",
        "en moyenne sur la période et au maximum",
        "le suit d'une image à l'autre tant qu'il est dans le champ (en général quelques "
        "secondes), en mémoire seulement",
        "jamais enregistré, jamais publié et jamais relié à une identité",
        "aucune image n'est jamais enregistrée ni transmise",
        "Qui reçoit les comptages",
        "Serveur de messages (MQTT)",
        "Tableau de bord de fréquentation :",
        "Portail de données ouvertes :",
        "Combien de temps",
        "Les comptages publiés sont conservés par le responsable du traitement",
        "Vos droits",
        "ne peuvent être reliés à aucune personne",
        "portent donc sur le traitement lui-même",
        "vous y opposer",
        "Pour exercer vos droits",
        "Délégué à la protection des données :",
        f"réclamation à la CNIL : {CNIL_COMPLAINT_URL}",
        "Politique en vigueur :",
        "Caméra ",
    ),
}
UNDECLARED = {lang: TEXTS[lang]["undeclared"] for lang in LANGS}


def camera(ident: str, location: str | None = None, zones: int = 0, **extra: Any) -> CameraConfig:
    return CameraConfig(
        id=ident,
        location=location,
        source="/dev/video0",
        lines=[LineConfig(name="l1", start=(10, 10), end=(300, 300))],
        zones=[
            ZoneConfig(name=f"z{i}", points=[(0, 0), (200, 0), (200, 200)]) for i in range(zones)
        ],
        **extra,
    )


def with_zone_k(policy: Policy, k: int) -> Policy:
    disclosure = policy.disclosure.model_copy(update={"zone_min_objects": k})
    return policy.model_copy(update={"disclosure": disclosure})


# Several complete declarations: (deployment, cameras, in force, policy, the values to find).
FRENCH_CITY = (
    DeploymentConfig(
        controller="Ville d'Exemple, 1 place de la Mairie",
        purpose="statistics",
        legal_basis="Mission d'intérêt public (RGPD art. 6(1)(e)) : plan de mobilité",
        dpo_contact="dpo@ville-exemple.fr",
        rights_contact="droits@ville-exemple.fr",
        notice_url="https://ville-exemple.fr/comptage",
        signage_reference="Panneau P-7 place du marché",
        retention_days=90,
        recipients=RecipientsConfig(
            broker_operator="Syndicat numérique départemental",
            dashboard="Service mobilité",
            dashboard_url="https://ville-exemple.fr/frequentation",
            open_data_portal="data.ville-exemple.fr",
            open_data_url="https://data.ville-exemple.fr/comptages",
            open_data_licence="Licence Ouverte 2.0",
            open_data_licence_url="https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
            others=["Université partenaire (étude de mobilité)"],
        ),
    ),
    [
        camera("place-marche", "Place du marché, côté nord", zones=2),
        camera("rue-gare", "Rue de la gare", notice_url="https://ville-exemple.fr/gare"),
    ],
    InForce(
        window_seconds=300,
        dashboard=DashboardConfig(raw_retention_days=45, hourly_retention_days=400),
        home_assistant=True,
    ),
    POLICY,
    (
        "Ville d'Exemple, 1 place de la Mairie",
        "Mission d'intérêt public (RGPD art. 6(1)(e)) : plan de mobilité",
        "dpo@ville-exemple.fr",
        "droits@ville-exemple.fr",
        "https://ville-exemple.fr/comptage",
        "Panneau P-7 place du marché",
        "90",
        "Syndicat numérique départemental",
        "Service mobilité",
        "https://ville-exemple.fr/frequentation",
        "data.ville-exemple.fr",
        "https://data.ville-exemple.fr/comptages",
        "Licence Ouverte 2.0",
        "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
        "Université partenaire (étude de mobilité)",
        "place-marche",
        "Place du marché, côté nord",
        "rue-gare",
        "Rue de la gare",
        "https://ville-exemple.fr/gare",
        "45",
        "400",
        "Home Assistant",
        POLICY.name,
        POLICY.sha256,
    ),
)
ENGLISH_TOWN = (
    DeploymentConfig(
        controller="Borough of Example",
        purpose="statistics",
        legal_basis="Public task (UK GDPR art. 6(1)(e))",
        dpo_contact="privacy@example.gov.uk, 10 High Street",
        notice_url="https://example.gov.uk/counting",
        signage_reference="Sign B-12",
        retention_days=7,
        recipients=RecipientsConfig(
            broker_operator="Acme Hosting Ltd",
            dashboard=False,
            open_data_portal="Example Data Store",
            open_data_licence="ODbL-1.0",
        ),
    ),
    [camera(f"cam-{i}", f"High Street, lamp post {i}", zones=i % 2) for i in range(1, 5)],
    InForce(window_seconds=3600, dashboard=DashboardConfig(raw_retention_days=10)),
    with_zone_k(STRICT, 5),
    (
        "Borough of Example",
        "Public task (UK GDPR art. 6(1)(e))",
        "privacy@example.gov.uk, 10 High Street",
        "https://example.gov.uk/counting",
        "Sign B-12",
        "Acme Hosting Ltd",
        "Example Data Store",
        "ODbL-1.0",
        "cam-1",
        "High Street, lamp post 4",
        STRICT.name,
        with_zone_k(STRICT, 5).sha256,
    ),
)
DECLARED = {"french-city": FRENCH_CITY, "english-town": ENGLISH_TOWN}


def visible(value: str, fmt: str) -> str:
    """How a value appears in the output: escaped in HTML."""
    return html.escape(value) if fmt == "html" else value


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", sorted(DECLARED))
def test_every_element_and_every_declared_value_is_on_the_notice(
    name: str, lang: Lang, fmt: str
) -> None:
    deployment, cameras, in_force, policy, values = DECLARED[name]
    text = render_notice(deployment, policy, cameras, fmt, lang=lang, in_force=in_force)
    for element in REQUIRED[lang]:
        assert visible(element, fmt) in text, element
    for value in values:
        assert visible(value, fmt) in text, value
    assert UNDECLARED[lang] not in text  # everything was declared
    assert text.startswith("<!doctype html>") == (fmt == "html")


def test_the_rights_contact_defaults_to_the_dpo() -> None:
    deployment, cameras, _, policy, _ = ENGLISH_TOWN
    (rights,) = [lines for head, lines in notice_sections(deployment, policy, cameras, "en")
                 if head == "Your rights"]  # fmt: skip
    assert "To exercise your rights or ask a question: privacy@example.gov.uk, 10 High Street" in (
        rights
    )


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(
    ("in_force", "expected"),
    [
        (FRENCH_CITY[2], {"en": "45 days, then only hourly totals, for 400 days",
                          "fr": "45 jours, puis seulement les totaux horaires, pendant 400 jours"}),
        (InForce(dashboard=DashboardConfig(raw_retention_days=3)),
         {"en": "3 days, then only hourly totals, without time limit",
          "fr": "3 jours, puis seulement les totaux horaires, sans limite de durée"}),
        (InForce(), None),
    ],
)  # fmt: skip
def test_dashboard_retention_is_stated_when_a_dashboard_is_configured(
    lang: Lang, in_force: InForce, expected: dict[str, str] | None
) -> None:
    deployment, cameras, _, policy, _ = FRENCH_CITY
    text = render_notice(deployment, policy, cameras, lang=lang, in_force=in_force)
    if expected is None:
        assert "hourly" not in text and "horaires" not in text
    else:
        assert expected[lang] in text


@pytest.mark.parametrize("lang", LANGS)
def test_open_data_may_be_kept_by_anyone_and_none_is_said_plainly(lang: Lang) -> None:
    deployment, cameras, _, policy, _ = FRENCH_CITY
    kept = TEXTS[lang]["open_kept"]
    assert kept in render_notice(deployment, policy, cameras, lang=lang)
    closed = deployment.model_copy(
        update={"recipients": RecipientsConfig(broker_operator=False, dashboard=False,
                                               open_data_portal=False)}
    )  # fmt: skip
    text = render_notice(closed, policy, cameras, lang=lang)
    assert kept not in text
    assert TEXTS[lang]["open_data_none"] in text
    assert f"{TEXTS[lang]['broker'].format(value=TEXTS[lang]['none'])}" in text
    assert UNDECLARED[lang] not in text


# -- undeclared facts are said, not omitted -----------------------------------------------------

# Every fact the empty declaration lacks: controller, purpose, legal basis, the camera's
# location, broker, dashboard, open-data portal and its licence, retention, rights contact,
# DPO, notice URL, signage.
UNDECLARED_IN_EMPTY = 13


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("lang", LANGS)
def test_an_empty_declaration_says_undeclared_for_each_missing_fact(lang: Lang, fmt: str) -> None:
    text = render_notice(DeploymentConfig(), POLICY, [camera("c1")], fmt, lang=lang)
    assert text.count(visible(UNDECLARED[lang], fmt)) == UNDECLARED_IN_EMPTY
    for element in REQUIRED[lang]:
        assert visible(element, fmt) in text, element


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(
    ("missing", "deployment"),
    [
        ("controller", {"controller": None}),
        ("legal_basis", {"legal_basis": None}),
        ("dpo and rights contact", {"dpo_contact": None, "rights_contact": None}),
        ("retention", {"retention_days": None}),
        ("broker", {"recipients": RecipientsConfig(dashboard=False, open_data_portal=False)}),
        ("licence", {"recipients": RecipientsConfig(broker_operator="B", dashboard=False,
                                                    open_data_portal="P")}),
    ],
)  # fmt: skip
def test_each_missing_fact_is_undeclared_on_its_own_line(
    lang: Lang, missing: str, deployment: dict[str, Any]
) -> None:
    declared = FRENCH_CITY[0].model_copy(update=deployment)
    lines = [line for _, lines in notice_sections(declared, POLICY, FRENCH_CITY[1], lang)
             for line in lines]  # fmt: skip
    marked = [line for line in lines if UNDECLARED[lang] in line]
    # "dpo and rights contact": the rights line falls back to the DPO, so both are undeclared
    assert len(marked) == (2 if missing == "dpo and rights contact" else 1), marked


@pytest.mark.parametrize(
    ("recipients", "undeclared"),
    [
        ({}, ["broker_operator", "dashboard", "open_data_portal"]),
        ({"broker_operator": "B", "dashboard": False}, ["open_data_portal"]),
        ({"broker_operator": False, "dashboard": "D", "open_data_portal": "P"},
         ["open_data_licence"]),
        ({"broker_operator": "B", "dashboard": "D", "open_data_portal": "P",
          "open_data_licence": "CC-BY-4.0"}, []),
    ],
)  # fmt: skip
def test_recipients_name_what_the_gate_could_ask_for(
    recipients: dict[str, Any], undeclared: list[str]
) -> None:
    settings = load_settings(None, deployment={"recipients": recipients})
    assert settings.deployment.recipients.undeclared() == [
        f"deployment.recipients.{name}" for name in undeclared
    ]


@pytest.mark.parametrize(
    "recipients",
    [
        {"dashboard": False, "dashboard_url": "https://example.org/d"},
        {"open_data_portal": False, "open_data_licence": "ODbL-1.0"},
        {"open_data_portal": False, "open_data_url": "https://data.example.org"},
        {"open_data_url": "not a url"},
        {"broker_operator": True},
        {"broker_operator": ""},
        {"mailing_list": "x"},
    ],
)
def test_contradictory_or_malformed_recipients_are_refused(recipients: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="recipients"):
        load_settings(None, deployment={"recipients": recipients})


# -- what the settings in force add -----------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "en", "fr"),
    [(60, "1 minute", "1 minute"), (120, "2 minutes", "2 minutes"), (900, "15 minutes",
     "15 minutes"), (3600, "1 hour", "1 heure"), (7200, "2 hours", "2 heures"),
     (90, "90 seconds", "90 secondes")],
)  # fmt: skip
def test_the_window_in_force_is_stated(seconds: int, en: str, fr: str) -> None:
    settings = load_settings(None, window={"seconds": seconds})
    english = render_notice_for(settings, POLICY, lang="en")
    french = render_notice_for(settings, POLICY, lang="fr")
    assert f"one report per camera and period of {en}." in english
    assert f"un rapport par caméra et par période de {fr}." in french
    # the claims issue 15 found false are gone
    for text in (english, french):
        assert "or more" not in text and "does not follow a person" not in text


@pytest.mark.parametrize("lang", LANGS)
def test_without_settings_the_policy_minimum_is_stated(lang: Lang) -> None:
    text = render_notice(DeploymentConfig(), POLICY, [], lang=lang)
    assert TEXTS[lang]["window_policy"].format(window="1 minute") in text
    assert TEXTS[lang]["no_camera"] in text


def test_in_force_takes_the_dashboard_only_when_configured() -> None:
    assert InForce.of(load_settings(None)).dashboard is None
    configured = InForce.of(load_settings(None, dashboard={"raw_retention_days": 12}))
    assert configured.dashboard is not None and configured.dashboard.raw_retention_days == 12
    assert not InForce.of(load_settings(None, mqtt={"home_assistant": True})).home_assistant
    assert InForce.of(
        load_settings(None, mqtt={"enabled": True, "home_assistant": True})
    ).home_assistant


@pytest.mark.parametrize("k", [3, 4, 7, 12])
def test_zone_groups_below_the_policy_k_are_said_hidden(k: int) -> None:
    policy = with_zone_k(POLICY, k)
    assert f"Groups of fewer than {k} objects are not shown" in render_notice(
        DeploymentConfig(), policy, [], lang="en"
    )
    assert f"Les groupes de moins de {k} objets ne sont pas montrés" in render_notice(
        DeploymentConfig(), policy, [], lang="fr"
    )


@pytest.mark.parametrize("k", [2, 3, 6])
def test_small_line_counts_rule_follows_the_policy(k: int) -> None:
    small = STRICT.small_counts.model_copy(update={"rule": "suppress", "k": k})
    policy = STRICT.model_copy(update={"small_counts": small})
    assert f"from 1 to {k - 1} in a period is published as 0" in render_notice(
        DeploymentConfig(), policy, [], lang="en"
    )
    assert f"de 1 à {k - 1} sur une période est publié" in render_notice(
        DeploymentConfig(), policy, [], lang="fr"
    )
    assert "small ones included" in render_notice(DeploymentConfig(), POLICY, [], lang="en")


# -- hostile strings --------------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</li></ul><h1>Fake heading</h1><ul><li>",
    "Tom & Jerry's <b>bold</b> &amp; done",
    "<a href='javascript:alert(1)'>click</a>",
]
ALLOWED_TAGS = {"html", "head", "meta", "title", "body", "h1", "h2", "ul", "li"}


class _Parsed(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def hostile_config(payload: str) -> tuple[DeploymentConfig, list[CameraConfig]]:
    """Every operator-written string set to ``payload``, bypassing validation: the escaping must
    hold even where a validator would let such a string through one day."""
    recipients = RecipientsConfig().model_copy(
        update={name: payload for name in ("broker_operator", "dashboard", "open_data_portal",
                                           "open_data_licence")} | {"others": [payload]}
    )  # fmt: skip
    deployment = DeploymentConfig().model_copy(
        update={name: payload for name in ("controller", "purpose", "legal_basis", "dpo_contact",
                                           "rights_contact", "signage_reference")}
        | {"recipients": recipients}
    )  # fmt: skip
    return deployment, [camera("c1").model_copy(update={"location": payload})]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("payload", HOSTILE)
def test_html_escapes_every_config_string(payload: str, lang: Lang) -> None:
    deployment, cameras = hostile_config(payload)
    page = render_notice(deployment, POLICY, cameras, "html", lang=lang)
    parsed = _Parsed()
    parsed.feed(page)
    assert parsed.tags <= ALLOWED_TAGS
    text = "".join(parsed.text)
    assert text.count(payload) >= 10  # shown as text, verbatim, in every place it was used
    sections = notice_sections(deployment, POLICY, cameras, lang)
    assert page.count("<li>") == sum(len(lines) for _, lines in sections)


@pytest.mark.parametrize("payload", ["x\n# Fake title", "a\r\n## Fake section\n- fake fact"])
def test_markdown_line_breaks_in_config_cannot_add_headings_or_items(payload: str) -> None:
    deployment, cameras = hostile_config(payload)
    lines = render_notice(deployment, POLICY, cameras, "md", lang="en").splitlines()
    assert [line for line in lines if line.startswith("# ")] == [f"# {TEXTS['en']['title']}"]
    assert not any("Fake" in line for line in lines if line.startswith("#"))
    assert not any(line.startswith("- fake") for line in lines)


# -- language ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "lang"),
    [("cnil-statistics", "fr"), ("cnil-statistics-strict", "fr"), ("cnil-lyon-2027", "fr"),
     ("city-footfall", "en"), ("statistics-cnil", "en"), ("acme", "en"), ("cni", "en")],
)  # fmt: skip
def test_french_by_default_under_a_cnil_policy_only(name: str, lang: Lang) -> None:
    policy = POLICY.model_copy(update={"name": name})
    assert default_lang(policy) == lang
    page = render_notice(DeploymentConfig(), policy, [], "html")
    assert page.startswith(f'<!doctype html><html lang="{lang}">')
    assert TEXTS[lang]["title"] in html.unescape(page)
    other: Lang = "en" if lang == "fr" else "fr"
    forced = render_notice(DeploymentConfig(), policy, [], "md", lang=other)
    assert forced.startswith(f"# {TEXTS[other]['title']}")


def test_both_languages_have_the_same_facts() -> None:
    assert TEXTS["fr"].keys() == TEXTS["en"].keys()
    assert len(NEVER["fr"]) == len(NEVER["en"])
    for key in TEXTS["en"]:
        assert TEXTS["en"][key] != TEXTS["fr"][key], key


@pytest.mark.parametrize(("args", "lang"), [((), "fr"), (("--lang", "fr"), "fr"),
                                            (("--lang", "en"), "en")])  # fmt: skip
def test_cli_renders_the_example_in_the_chosen_language(args: tuple[str, ...], lang: Lang) -> None:
    result = edge("notice", "-c", str(EXAMPLE), "--format", "html", *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f'<!doctype html><html lang="{lang}">')
    text = html.unescape(result.stdout)
    for element in REQUIRED[lang]:
        assert element in text, element
    assert POLICY.sha256 in text and "1 minute" in text


@pytest.mark.parametrize("lang", LANGS)
def test_a_large_deployment_notice_fits_the_retained_mqtt_message(lang: Lang) -> None:
    deployment, _, in_force, policy, _ = FRENCH_CITY
    cameras = [
        camera(f"c{n}", "x" * 200, zones=2, notice_url="https://e.org/" + "y" * 280)
        for n in range(16)
    ]
    text = render_notice(deployment, policy, cameras, "md", lang=lang, in_force=in_force)
    NoticeMessage(schema_version=1, policy=policy.name, policy_sha256=policy.sha256,
                  notice_url="https://e.org/n", notice=text)  # fmt: skip
