"""The public information notice a city must display (GDPR art. 12-13; CNIL, July 2022: the
CNIL found communes failing exactly this duty). Rendered from the deployment declaration, the
settings in force and the policy, so what the sign says and what the box does come from the
same file.

Every fact the notice must give is always printed: a value the declaration lacks is shown as
"not declared", never silently left out, so a reader (and a DPO) sees the gap. The wording
describes only what the code does; the tests pin each element in both languages and formats.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from edge.config import (
    CameraConfig,
    DashboardConfig,
    DeploymentConfig,
    RecipientsConfig,
    Settings,
)
from edge.legal.policy import Policy

Lang = Literal["fr", "en"]
Format = Literal["md", "html"]
LANGS: tuple[Lang, ...] = ("fr", "en")
CNIL_COMPLAINT_URL = "https://www.cnil.fr/fr/plaintes"

# One table per language, same keys (a test checks it), so a translator edits one place and a
# fact cannot exist in one language only.
TEXTS: dict[Lang, dict[str, str]] = {
    "en": {
        "title": "Camera counting in this area: information notice",
        "undeclared": "(not declared)",
        "h_who": "Who counts",
        "controller": "Controller: {value}",
        "h_why": "Why, and on what legal basis",
        "purpose": "Purpose: {value}. Only anonymous statistics of footfall and traffic are "
        "produced.",
        "legal_basis": "Legal basis: {value}",
        "h_how": "What is counted, and how",
        "detect": "A detection model running on the device looks for {categories} in the "
        "camera's images. Images are analysed in real time in the device's memory; no "
        "image is ever stored or transmitted.",
        "follow": "To count each object only once, the device follows it from image to image "
        "while it is in view (usually a few seconds), in memory only, under a temporary number "
        "that is forgotten within seconds of it leaving. This following is never stored, never "
        "published and never linked to an identity.",
        "lines": "Counting lines: each crossing of a line is counted per direction (in or out) "
        "and per category.",
        "zones": "Zones: the number of objects present in the zone, per category, averaged "
        "over the period and at its peak. Groups of fewer than {k} objects are not shown: "
        "they count as 0.",
        "movements": "Turning movements: the number of objects that crossed one line and then "
        "another within {seconds} seconds, per pair of lines and category. The two crossings "
        "are paired in memory under the temporary number only, which is then forgotten.",
        "small_suppress": "A line count from 1 to {k_minus} in a period is published as 0.",
        "small_none": "Line counts are published as they are, small ones included.",
        "window": "Only these totals leave the device: at most one report per camera and period "
        "of {window}.",
        "window_policy": "Only these totals leave the device: at most one report per camera and "
        "period of at least {window} (the policy's minimum).",
        "health": "Besides them, the device sends only figures about its own working (frame "
        "rate, connection), nothing about the scene.",
        "h_never": "What is never done",
        "h_where": "Where",
        "camera": "Camera {id}: {location}",
        "camera_setup": "{lines} counting line(s), {zones} zone(s)",
        "camera_movements": "{movements} turning movement(s)",
        "camera_notice": "its own notice: {url}",
        "no_camera": "No camera is configured.",
        "h_recipients": "Who receives the counts",
        "broker": "Message broker (MQTT) receiving the counts: {value}",
        "dashboard": "Footfall dashboard: {value}",
        "open_data": "Open-data portal: {value}; licence: {licence}",
        "open_data_none": "Open-data portal: none, the counts are not published as open data.",
        "other": "Other recipient: {value}",
        "home_assistant": "The counts are also announced on the broker to Home Assistant: any "
        "Home Assistant connected to it can show them.",
        "none": "none",
        "h_retention": "How long",
        "kept": "Published counts are kept by the controller for {value}.",
        "dashboard_kept": "The dashboard keeps each period's counts for {raw} days, then only "
        "hourly totals, {hourly}.",
        "hourly_days": "for {days} days",
        "hourly_forever": "without time limit",
        "open_kept": "Counts published as open data may be kept and re-used by anyone without "
        "time limit, under the licence above.",
        "device_kept": "On the device, counts not yet delivered are kept for at most {spool} "
        "days, and the log of its decisions (no image) for at least {audit} days.",
        "days": "{days} days",
        "h_rights": "Your rights",
        "rights": "The counts cannot be linked to any person: no image and no data about any "
        "individual is kept, so no published figure concerns you and there is nothing about "
        "you to access, correct or erase (GDPR art. 11). Your rights therefore apply to the "
        "processing itself: you may ask for information about it and object to it (GDPR art. "
        "21).",
        "rights_contact": "To exercise your rights or ask a question: {value}",
        "dpo": "Data protection officer: {value}",
        "complaint": "You may lodge a complaint with the CNIL: {url}",
        "h_reference": "Reference",
        "reference": "Full notice: {url}; signage: {signage}",
        "policy": "Policy in force: {name} version {version}, sha256 {sha256}",
    },
    "fr": {
        "title": "Comptage par caméra dans cette zone : notice d'information",
        "undeclared": "(non déclaré)",
        "h_who": "Qui compte",
        "controller": "Responsable du traitement : {value}",
        "h_why": "Pourquoi, et sur quelle base légale",
        "purpose": "Finalité : {value}. Seules des statistiques anonymes de fréquentation et "
        "de circulation sont produites.",
        "legal_basis": "Base légale : {value}",
        "h_how": "Ce qui est compté, et comment",
        "detect": "Un modèle de détection exécuté sur l'appareil repère les {categories} dans "
        "les images de la caméra. Les images sont analysées en temps réel dans la mémoire de "
        "l'appareil ; aucune image n'est jamais enregistrée ni transmise.",
        "follow": "Pour ne compter chaque objet qu'une fois, l'appareil le suit d'une image à "
        "l'autre tant qu'il est dans le champ (en général quelques secondes), en mémoire "
        "seulement, sous un numéro provisoire oublié quelques secondes après sa sortie. Ce "
        "suivi n'est jamais enregistré, jamais publié et jamais relié à une identité.",
        "lines": "Lignes de comptage : chaque franchissement d'une ligne est compté par sens "
        "(entrée ou sortie) et par catégorie.",
        "zones": "Zones : le nombre d'objets présents dans la zone, par catégorie, en moyenne "
        "sur la période et au maximum. Les groupes de moins de {k} objets ne sont pas montrés : "
        "ils comptent pour 0.",
        "movements": "Mouvements tournants : le nombre d'objets qui ont franchi une ligne puis "
        "une autre en moins de {seconds} secondes, par paire de lignes et par catégorie. Les "
        "deux franchissements sont rapprochés en mémoire sous le seul numéro provisoire, "
        "oublié ensuite.",
        "small_suppress": "Un comptage de ligne de 1 à {k_minus} sur une période est publié "
        "comme 0.",
        "small_none": "Les comptages de ligne sont publiés tels quels, petits nombres compris.",
        "window": "Seuls ces totaux sortent de l'appareil : au plus un rapport par caméra et "
        "par période de {window}.",
        "window_policy": "Seuls ces totaux sortent de l'appareil : au plus un rapport par "
        "caméra et par période d'au moins {window} (le minimum de la politique).",
        "health": "En dehors d'eux, l'appareil n'envoie que des chiffres sur son propre "
        "fonctionnement (images par seconde, connexion), rien sur la scène.",
        "h_never": "Ce qui n'est jamais fait",
        "h_where": "Où",
        "camera": "Caméra {id} : {location}",
        "camera_setup": "{lines} ligne(s) de comptage, {zones} zone(s)",
        "camera_movements": "{movements} mouvement(s) tournant(s)",
        "camera_notice": "sa propre notice : {url}",
        "no_camera": "Aucune caméra n'est configurée.",
        "h_recipients": "Qui reçoit les comptages",
        "broker": "Serveur de messages (MQTT) qui reçoit les comptages : {value}",
        "dashboard": "Tableau de bord de fréquentation : {value}",
        "open_data": "Portail de données ouvertes : {value} ; licence : {licence}",
        "open_data_none": "Portail de données ouvertes : aucun, les comptages ne sont pas "
        "publiés en données ouvertes.",
        "other": "Autre destinataire : {value}",
        "home_assistant": "Les comptages sont aussi annoncés sur le serveur de messages à Home "
        "Assistant : tout Home Assistant qui y est connecté peut les afficher.",
        "none": "aucun",
        "h_retention": "Combien de temps",
        "kept": "Les comptages publiés sont conservés par le responsable du traitement "
        "pendant {value}.",
        "dashboard_kept": "Le tableau de bord conserve les comptages de chaque période "
        "{raw} jours, puis seulement les totaux horaires, {hourly}.",
        "hourly_days": "pendant {days} jours",
        "hourly_forever": "sans limite de durée",
        "open_kept": "Les comptages publiés en données ouvertes peuvent être conservés et "
        "réutilisés par quiconque sans limite de durée, selon la licence ci-dessus.",
        "device_kept": "Sur l'appareil, les comptages pas encore transmis sont conservés au "
        "plus {spool} jours, et le journal de ses décisions (sans image) au moins {audit} jours.",
        "days": "{days} jours",
        "h_rights": "Vos droits",
        "rights": "Les comptages ne peuvent être reliés à aucune personne : aucune image ni "
        "aucune donnée sur un individu n'est conservée, donc aucun chiffre publié ne vous "
        "concerne et il n'y a rien vous concernant à consulter, rectifier ou effacer (RGPD "
        "art. 11). Vos droits portent donc sur le traitement lui-même : vous pouvez demander "
        "des informations à son sujet et vous y opposer (RGPD art. 21).",
        "rights_contact": "Pour exercer vos droits ou poser une question : {value}",
        "dpo": "Délégué à la protection des données : {value}",
        "complaint": "Vous pouvez adresser une réclamation à la CNIL : {url}",
        "h_reference": "Référence",
        "reference": "Notice complète : {url} ; signalétique : {signage}",
        "policy": "Politique en vigueur : {name} version {version}, sha256 {sha256}",
    },
}

# Whole sentences, not a template: the two languages do not build negations the same way.
NEVER: dict[Lang, tuple[str, ...]] = {
    "en": (
        "The device identifies no one: it does not recognise faces or read number plates.",
        "It follows no one beyond the time they are in view of one camera, neither across "
        "cameras nor over time, and keeps no image.",
        "It does not guess age, gender, emotion or any other personal trait.",
        "It raises no alert on behaviour, gatherings, parking or 'abnormal' events.",
    ),
    "fr": (
        "L'appareil n'identifie personne : il ne reconnaît aucun visage et ne lit aucune "
        "plaque d'immatriculation.",
        "Il ne suit personne au-delà du temps où la personne est dans le champ d'une caméra, ni "
        "d'une caméra à l'autre, ni dans le temps, et ne conserve aucune image.",
        "Il ne devine ni l'âge, ni le genre, ni les émotions, ni aucun autre trait personnel.",
        "Il ne déclenche aucune alerte sur des comportements, des attroupements, du "
        "stationnement ou des événements « anormaux ».",
    ),
}

PURPOSES: dict[Lang, dict[str, str]] = {
    "en": {"statistics": "statistics"},
    "fr": {"statistics": "statistiques"},
}

CATEGORY_NAMES: dict[Lang, dict[str, str]] = {
    "en": {"pedestrian": "pedestrians", "bike": "bikes", "vehicle": "vehicles"},
    "fr": {"pedestrian": "piétons", "bike": "vélos", "vehicle": "véhicules"},
}


def default_lang(policy: Policy) -> Lang:
    """French where the policy in force is one of the CNIL profiles (the public it informs is in
    France), English otherwise."""
    return "fr" if policy.name.startswith("cnil") else "en"


def zone_k(policy: Policy) -> int:
    """Smallest group a zone figure shows: below it a sample counts as 0."""
    return policy.disclosure.zone_min_objects


def _duration(seconds: int, lang: Lang) -> str:
    if seconds % 3600 == 0:
        n, unit = seconds // 3600, ("hour", "heure")
    elif seconds % 60 == 0:
        n, unit = seconds // 60, ("minute", "minute")
    else:
        n, unit = seconds, ("second", "seconde")
    word = unit[0] if lang == "en" else unit[1]
    return f"{n} {word}{'s' if n > 1 else ''}"


@dataclass(frozen=True)
class InForce:
    """What the running configuration adds to the declaration. The defaults state only what
    the policy guarantees (its minimum window), never a guess about the settings."""

    window_seconds: int | None = None
    dashboard: DashboardConfig | None = None  # set when the configuration has a dashboard
    home_assistant: bool = False

    @classmethod
    def of(cls, settings: Settings) -> InForce:
        """The facts of ``settings``; a dashboard counts only if the file or the environment
        configures one (its defaults alone say nothing about a real dashboard)."""
        return cls(
            window_seconds=settings.window.seconds,
            dashboard=settings.dashboard if "dashboard" in settings.model_fields_set else None,
            home_assistant=settings.mqtt.enabled and settings.mqtt.home_assistant,
        )


def _recipient_lines(
    recipients: RecipientsConfig, home_assistant: bool, t: dict[str, str]
) -> list[str]:
    def said(value: str | Literal[False] | None, url: str | None = None) -> str:
        if value is None:
            return t["undeclared"]
        if value is False:
            return t["none"]
        return f"{value} ({url})" if url else value

    open_data = recipients.open_data_portal
    return [
        t["broker"].format(value=said(recipients.broker_operator)),
        t["dashboard"].format(value=said(recipients.dashboard, recipients.dashboard_url)),
        t["open_data_none"]
        if open_data is False
        else t["open_data"].format(
            value=said(open_data, recipients.open_data_url),
            licence=said(recipients.open_data_licence, recipients.open_data_licence_url),
        ),
        *(t["other"].format(value=other) for other in recipients.others),
        *([t["home_assistant"]] if home_assistant else []),
    ]


def _retention_lines(
    deployment: DeploymentConfig,
    policy: Policy,
    dashboard: DashboardConfig | None,
    t: dict[str, str],
) -> list[str]:
    days = deployment.retention_days
    lines = [t["kept"].format(value=t["days"].format(days=days) if days else t["undeclared"])]
    if dashboard is not None:
        hourly_days = dashboard.hourly_retention_days
        hourly = (
            t["hourly_forever"]
            if hourly_days is None
            else t["hourly_days"].format(days=hourly_days)
        )
        lines.append(t["dashboard_kept"].format(raw=dashboard.raw_retention_days, hourly=hourly))
    if isinstance(deployment.recipients.open_data_portal, str):
        lines.append(t["open_kept"])
    lines.append(
        t["device_kept"].format(
            spool=policy.retention.spool_days, audit=policy.retention.audit_days
        )
    )
    return lines


def notice_sections(
    deployment: DeploymentConfig,
    policy: Policy,
    cameras: Sequence[CameraConfig],
    lang: Lang = "en",
    in_force: InForce | None = None,
) -> list[tuple[str, list[str]]]:
    """(heading, lines) pairs: the facts, independent of the output format."""
    running = in_force or InForce()
    window_seconds = running.window_seconds
    t = TEXTS[lang]
    unknown = t["undeclared"]
    names = CATEGORY_NAMES[lang]
    categories = ", ".join(names[c.value] for c in policy.allowed_categories)
    how = [t["detect"].format(categories=categories), t["follow"]]
    if "line_counts" in policy.allowed_outputs:
        k = policy.small_counts.k
        small = (
            t["small_suppress"].format(k_minus=k - 1)
            if policy.small_counts.rule == "suppress"
            else t["small_none"]
        )
        how += [t["lines"], small]
    if "zone_occupancy" in policy.allowed_outputs:
        how.append(t["zones"].format(k=zone_k(policy)))
    longest = max((m.within_s for c in cameras for m in c.movements), default=None)
    if "turning_movements" in policy.allowed_outputs and longest is not None:
        how.append(t["movements"].format(seconds=f"{longest:g}"))
    how.append(
        t["window"].format(window=_duration(window_seconds, lang))
        if window_seconds is not None
        else t["window_policy"].format(window=_duration(policy.min_window_seconds, lang))
    )
    how.append(t["health"])
    where = []
    for camera in cameras:
        line = t["camera"].format(id=camera.id, location=camera.location or unknown)
        line += " - " + t["camera_setup"].format(lines=len(camera.lines), zones=len(camera.zones))
        if camera.movements:
            line += ", " + t["camera_movements"].format(movements=len(camera.movements))
        if camera.notice_url:
            line += " - " + t["camera_notice"].format(url=camera.notice_url)
        where.append(line)
    rights_contact = deployment.rights_contact or deployment.dpo_contact or unknown
    return [
        (t["h_who"], [t["controller"].format(value=deployment.controller or unknown)]),
        (
            t["h_why"],
            [
                t["purpose"].format(
                    value=PURPOSES[lang].get(deployment.purpose or "", deployment.purpose)
                    or unknown
                ),
                t["legal_basis"].format(value=deployment.legal_basis or unknown),
            ],
        ),
        (t["h_how"], how),
        (t["h_never"], list(NEVER[lang])),
        (t["h_where"], where or [t["no_camera"]]),
        (t["h_recipients"], _recipient_lines(deployment.recipients, running.home_assistant, t)),
        (t["h_retention"], _retention_lines(deployment, policy, running.dashboard, t)),
        (
            t["h_rights"],
            [
                t["rights"],
                t["rights_contact"].format(value=rights_contact),
                t["dpo"].format(value=deployment.dpo_contact or unknown),
                t["complaint"].format(url=CNIL_COMPLAINT_URL),
            ],
        ),
        (
            t["h_reference"],
            [
                t["reference"].format(
                    url=deployment.notice_url or unknown,
                    signage=deployment.signage_reference or unknown,
                ),
                t["policy"].format(name=policy.name, version=policy.version, sha256=policy.sha256),
            ],
        ),
    ]


def render_notice(
    deployment: DeploymentConfig,
    policy: Policy,
    cameras: Sequence[CameraConfig],
    fmt: Format | str = "md",
    *,
    lang: Lang | None = None,
    in_force: InForce | None = None,
) -> str:
    """The notice as Markdown or as a standalone HTML page; every config-derived string is
    escaped in HTML, since the config is written by the operator, not by us."""
    chosen: Lang = lang or default_lang(policy)
    sections = notice_sections(deployment, policy, cameras, chosen, in_force)
    title = TEXTS[chosen]["title"]
    if fmt == "html":
        body = "".join(
            f"<h2>{html.escape(head)}</h2><ul>"
            + "".join(f"<li>{html.escape(line)}</li>" for line in lines)
            + "</ul>"
            for head, lines in sections
        )
        return (
            f'<!doctype html><html lang="{chosen}"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
            f"{body}</body></html>\n"
        )
    out = [f"# {title}", ""]
    for head, lines in sections:
        # one list item per fact: a line break in a config value cannot start a heading
        out += [f"## {head}", "", *(f"- {' '.join(line.split())}" for line in lines), ""]
    return "\n".join(out)


def render_notice_for(
    settings: Settings, policy: Policy, fmt: Format | str = "md", lang: Lang | None = None
) -> str:
    """The notice of a whole configuration, with what its settings add (``InForce.of``)."""
    return render_notice(
        settings.deployment,
        policy,
        settings.cameras,
        fmt,
        lang=lang,
        in_force=InForce.of(settings),
    )
