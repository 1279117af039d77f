"""The uses this product refuses, each with the rule that forbids it, in one sentence; and the
names that would publish personal data.

The configuration schema has no field for any forbidden use, so none can be switched on. A
configuration (file or ``EDGE_*`` environment) that asks for one anyway (``mode:
face_recognition``, ``alertes: ...``, ``EDGE_GESICHTSERKENNUNG=1``) is refused with the reason
here, before validation, rather than dismissed as a mere unknown key: the operator and the DPO
must see *why* it does not exist.

Matching, on keys, variable names and string values:

- the text is first folded (``fold``): NFKC, invisible and format characters (zero-width space,
  soft hyphen, ...) dropped, Cyrillic and Greek look-alikes read as the Latin letters they imitate,
  accents stripped, case ignored; so ``face`` written with a Cyrillic ``a`` (U+0430) or with a
  zero-width space inside is ``face``;
- it is split into words (``face_recognition``, ``faceRecognition``, ``face-recognition``) and
  refused when its words contain one of a feature's word sequences, in English, French, German,
  Spanish or Italian;
- and, for compounds (German mostly: ``Gesichtserkennung``, ``Kfz-Kennzeichen``) and words run
  together (``facerecognition``), when the letters contain one of a feature's stems. Stems are
  only long, unambiguous fragments: ``face`` is not one (``surface``), ``gesicht`` is.

Values a person writes for the public are not read for forbidden words, nor are paths, URLs and
secrets (``UNREAD_VALUES``): a camera located at "Parking Saint-Jean" does not detect parking,
and a password is never repeated in a refusal. Names (camera ids, line and zone names, the MQTT
site) are read, and checked for personal data as well (``public_name_problem``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

_ABNORMAL = (
    "Automated detection of 'abnormal' situations is not allowed without a specific law "
    "(CNIL position on augmented cameras, July 2022; its 2023-2024 controls found such uses "
    "unlawful); this device only produces statistics."
)
_DECREE = (
    "This is one of the eight events of décret 2023-828, an experiment reserved by law "
    "(loi 2023-380) to specific authorities and events, ended on 31 March 2025; it never "
    "covered a counting box. " + _ABNORMAL
)

# -- folding: what a text reads as --------------------------------------------------------------

# Letters of other scripts drawn like Latin ones (Unicode's confusables, the ones a keyboard or a
# copy-paste gives): folded for matching only, never in what is stored or shown.
_LOOK_ALIKES: Final = str.maketrans(
    # Cyrillic: abreekmhonpctyxbsiijdhqwylABEEKMHOPCTYXSIIJDHQWYI
    "\u0430\u0432\u0433\u0435\u0451\u043a\u043c\u043d\u043e\u043f\u0440\u0441"
    "\u0442\u0443\u0445\u044c\u0455\u0456\u0457\u0458\u0501\u04bb\u051b\u051d"
    "\u04af\u04cf\u0410\u0412\u0415\u0401\u041a\u041c\u041d\u041e\u0420\u0421"
    "\u0422\u0423\u0425\u0405\u0406\u0407\u0408\u0500\u04ba\u051a\u051c\u04ae"
    "\u04c0"
    # Greek: abyenikvoptuxwcjABEZHIKMNOPTYXC
    "\u03b1\u03b2\u03b3\u03b5\u03b7\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5"
    "\u03c7\u03c9\u03f2\u03f3\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c"
    "\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u03f9"
    # Armenian: oughn
    "\u0585\u057d\u0581\u0570\u0578"
    # Latin letters drawn like others: ijagirs
    "\u0131\u0237\u0251\u0261\u0269\u0280\u017f",
    "abreekmhonpctyxbsiijdhqwylABEEKMHOPCTYXSIIJDHQWYIabyenikvoptuxwcjABEZHIKMNOPTYXCoughnijagirs",
)
# Latin letters that do not decompose into a letter and an accent: spelt out, shown as they are.
_LATIN: Final = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l",
     "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "þ": "th"}
)  # fmt: skip
# Drawn as nothing yet not of category Cf (format): Hangul fillers, the Mongolian vowel separator.
_INVISIBLE: Final = frozenset("\u115f\u1160\u3164\uffa0\u180e\u2800")


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf" or ch in _INVISIBLE


def fold(text: str) -> str:
    """What ``text`` reads as: NFKC, invisible and format characters dropped, look-alike letters
    in Latin, accents stripped. Case is kept (``words`` splits camelCase on it)."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if not _invisible(ch)).translate(_LOOK_ALIKES)
    text = text.translate(_LATIN)
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


def words(text: str) -> tuple[str, ...]:
    """'faceRecognition' / 'face-recognition' / 'face_recognition' -> ('face', 'recognition'),
    after ``fold``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", fold(text))
    return tuple(w for w in re.split(r"[^0-9a-z]+", spaced.lower()) if w)


def shown(text: str, limit: int = 80) -> str:
    """``text`` for a one-line message: invisible characters and look-alike letters written as
    ``\\uXXXX`` so the trick is visible, control characters escaped, long values cut."""
    out = "".join(
        f"\\u{ord(ch):04x}"
        if _invisible(ch) or (ord(ch) > 127 and ch.translate(_LOOK_ALIKES) != ch)
        else (repr(ch)[1:-1] if not ch.isprintable() else ch)
        for ch in text
    )
    return out if len(out) <= limit else out[: limit - 3] + "..."


# -- the forbidden uses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Forbidden:
    feature: str
    phrases: str  # comma-separated; each phrase is a sequence of words, e.g. "wrong way"
    reason: str
    stems: str = ""  # comma-separated; found anywhere in the letters, across words

    @property
    def sequences(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(p.split()) for p in self.phrases.split(","))

    @property
    def fragments(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.stems.split(",") if s.strip())


# Each feature in English, then French, German, Spanish, Italian, written without accents (the
# text is folded before matching). Words that are also ordinary place names are left out or only
# used in phrases: "Place d'Armes" and "Plaza de Armas" are squares, "feu" is a traffic light.
FORBIDDEN: tuple[Forbidden, ...] = (
    Forbidden(
        "face detection or recognition",
        "face, faces, facial, "
        "visage, visages, faciale, faciales, faciaux, "
        "gesicht, gesichter, "
        "cara, caras, rostro, rostros, "
        "volto, volti, viso, visi, facciale, facciali",
        "Face recognition in public space is excluded: real-time remote biometric identification "
        "is prohibited (EU AI Act art. 5(1)(h)) and biometric data are special-category data "
        "(GDPR art. 9).",
        "facerecog, facedetect, faceident, facematch, facial, facciale, gesicht",
    ),
    Forbidden(
        "biometric identification",
        "biometric, biometrics, identification, identify, gait, "
        "biometrie, biometrique, biometriques, "
        "identifizierung, identifikation, "
        "biometria, biometrico, biometrica, identificacion, identificar, "
        "identificazione, identificare, andatura",
        "Biometric identification of people in public space is prohibited (EU AI Act art. 5; "
        "GDPR art. 9); this device counts, it never identifies.",
        "biometr, gangerkenn, identifizier",
    ),
    Forbidden(
        "re-identification or appearance embeddings",
        "reid, re id, reidentification, re identification, embedding, embeddings, appearance, "
        "person search, track export, "
        "apparence, recherche de personnes, recherche de personne, "
        "aussehen, personensuche, "
        "apariencia, busqueda de personas, "
        "ricerca di persone, ricerca persone",
        "Re-identification follows one person across cameras or over time, so the output is no "
        "longer anonymous statistics (CNIL, July 2022; GDPR art. 5(1)(c) data minimisation).",
        "reidentif, wiedererkenn, personensuche, personsearch, embedding, trackexport",
    ),
    Forbidden(
        "attribute inference (age, gender, emotion, ...)",
        "age estimation, age detection, age inference, age group, age recognition, gender, "
        "emotion, emotions, ethnicity, attribute, attributes, mask detection, clothing, "
        "estimation de l age, estimation d age, tranche d age, genre, sexe, ethnie, vetements, "
        "geschlecht, ethnizitat, kleidung, altersgruppe, "
        "estimacion de edad, grupo de edad, genero, sexo, emocion, emociones, etnia, ropa, "
        "stima dell eta, fascia d eta, genere, sesso, emozione, emozioni, abbigliamento",
        "Inferring personal attributes is biometric categorisation or emotion recognition "
        "(EU AI Act art. 5(1)(f)-(g)), or special-category processing (GDPR art. 9).",
        "ageestimat, agedetect, geschlecht, altersschatz, altersschaetz, altersbestimm, "
        "altersgrupp, emotionserkenn, ethni",
    ),
    Forbidden(
        "licence-plate reading",
        "plate, plates, lpr, anpr, alpr, lapi, registration number, "
        "plaque, plaques, immatriculation, "
        "kennzeichen, nummernschild, "
        "matricula, matriculas, placa, placas, "
        "targa, targhe",
        "Searching number plates belongs to judicial requisitions carried out by authorised "
        "forces, never to a counting box (CNIL, controls of 2023-2024).",
        "licenseplate, licenceplate, numberplate, platerecog, platereader, platedetect, "
        "immatricul, kennzeichen, nummernschild",
    ),
    Forbidden(
        "crowd, density or gathering alerts",
        "crowd, crowds, density, gathering, gatherings, attroupement, "
        "foule, foules, attroupements, rassemblement, rassemblements, densite, "
        "menschenmenge, ansammlung, gedrange, gedraenge, dichte, "
        "multitud, multitudes, muchedumbre, aglomeracion, densidad, "
        "folla, assembramento, assembramenti, affollamento, densita",
        _ABNORMAL,
        "crowd, menschenmenge, ansammlung, gedrange, gedraenge, menschendichte, personendichte, "
        "assembrament, affollament",
    ),
    Forbidden(
        "stationary-vehicle, parking or wrong-way alerts",
        "parking, stationary, wrong way, stopped vehicle, "
        "stationnement, stationne, stationnaire, contresens, sens interdit, vehicule arrete, "
        "parken, falschparker, "
        "aparcamiento, aparcar, aparcado, estacionamiento, estacionado, estacionar, "
        "sentido contrario, vehiculo detenido, "
        "parcheggio, parcheggi, sosta, contromano, veicolo fermo",
        _ABNORMAL,
        "parking, wrongway, illegalpark, falschpark, parkverbot, parkverstoss, parkdauer, "
        "falschfahr, geisterfahr, stationnement, aparcamiento, estacionamiento, parcheggi, "
        "contromano",
    ),
    Forbidden(
        "loitering or dwell time",
        "loitering, dwell, long stay, stay duration, "
        "flanerie, maraudage, temps de presence, duree de presence, "
        "herumlungern, lungern, verweildauer, aufenthaltsdauer, "
        "merodeo, merodear, tiempo de permanencia, "
        "bighellonaggio, bighellonare, tempo di permanenza",
        _ABNORMAL,
        "loiter, dwelltime, maraud, lungern, verweildauer, aufenthaltsdauer, merode, bighellon",
    ),
    Forbidden(
        "abandoned objects",
        "abandoned, luggage, left object, "
        "abandonne, abandonnes, abandonnee, bagage, bagages, colis suspect, "
        "gepack, gepaeck, herrenlos, herrenloses, "
        "abandonado, abandonada, equipaje, "
        "abbandonato, abbandonata, bagaglio, bagagli",
        _ABNORMAL,
        "herrenlos, gepack, gepaeck",
    ),
    Forbidden(
        "events of décret 2023-828 (weapons, falls, intrusion, fire, crowd movement)",
        "weapon, weapons, fall detection, fallen, person down, intrusion, forbidden zone, "
        "sensitive zone, fire, smoke, crowd movement, "
        "arme a feu, armes a feu, detection d armes, detection de chute, personne a terre, "
        "incendie, fumee, zone interdite, mouvement de foule, "
        "waffe, waffen, sturz, feuer, rauch, eindringling, sperrzone, "
        "arma de fuego, armas de fuego, deteccion de armas, deteccion de caidas, incendio, "
        "fuego, humo, intrusion, zona prohibida, "
        "arma da fuoco, armi da fuoco, rilevamento armi, rilevamento cadute, fuoco, fumo, "
        "intrusione, zona vietata",
        _DECREE,
        "weapon, firearm, waffe, sturzerkenn, eindringling, brandmeld, rauchmeld",
    ),
    Forbidden(
        "alerts or abnormal-event detection",
        "alert, alerts, alarm, alarms, abnormal, anomaly, anomalies, incident, incidents, "
        "event detection, "
        "alerte, alertes, alarme, alarmes, anormal, anormale, anomalie, evenement anormal, "
        "warnung, alarmierung, "
        "alerta, alertas, alarma, alarmas, anomalia, anomalias, incidente, incidentes, "
        "allarme, allarmi, allerta, anomalo, anomala, incidenti",
        _ABNORMAL,
        "alert, alarm, allarm, anomal",
    ),
    Forbidden(
        "per-object speed output",
        "speed, velocity, speeding, "
        "vitesse, vitesses, "
        "geschwindigkeit, "
        "velocidad, velocidades, "
        "velocita",
        "A per-object speed is a measurement of one person's or vehicle's behaviour, not an "
        "aggregate statistic, and opens enforcement uses this device is not declared for "
        "(GDPR art. 5(1)(b)-(c) purpose limitation and minimisation).",
        "speedmeas, speedcam, velocit, velocid, geschwindigkeit",
    ),
    Forbidden(
        "frame or snapshot recording or streaming",
        "record, recording, snapshot, snapshots, save frames, video out, stream out, restream, "
        "clip export, "
        "enregistrement, enregistrements, enregistrer, "
        "aufzeichnung, aufzeichnungen, aufzeichnen, aufnahme, mitschnitt, "
        "grabacion, grabaciones, grabar, "
        "registrazione, registrazioni, registrare",
        "No pixel leaves the detector: recording or relaying images would make this a "
        "video-protection system with its own legal regime, which a counting device is not "
        "(GDPR art. 25 data protection by design).",
        "recording, snapshot, restream, videorecord, saveframe, enregistr, aufzeichn, "
        "mitschnitt, videoaufnahm, grabacion, registrazion",
    ),
)


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def match(text: str) -> Forbidden | None:
    """The forbidden use ``text`` names, in any of the five languages, after folding."""
    said = words(text)
    letters = "".join(said)
    return next(
        (
            f
            for f in FORBIDDEN
            if any(_contains(said, w) for w in f.sequences)
            or any(s in letters for s in f.fragments)
        ),
        None,
    )


@dataclass(frozen=True)
class Refusal:
    where: str  # YAML path or variable, e.g. "detector.face_recognition", "EDGE_MODE: faces"
    feature: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.feature} is refused. {self.reason}"


Key = str | int  # a mapping key or a list index
# Values not read for forbidden words, as key paths ("*": any key or index; a path matches when
# it starts with one): text written for the public, where a place name such as "Parking
# Saint-Jean" is legitimate; paths and URLs, named by file systems and servers; secrets and
# accounts, never repeated in a refusal. Names are read. ``deployment.purpose`` is read too: a
# declared purpose of "reconnaissance faciale" is the very thing to refuse.
UNREAD_VALUES: Final[tuple[tuple[str, ...], ...]] = (
    ("cameras", "*", "location"),
    ("deployment", "*"),
    ("dashboard", "title"),
    ("dashboard", "attribution"),
    ("dashboard", "licence"),
    ("cameras", "*", "source"),
    ("cameras", "*", "notice_url"),
    ("model_dir",),
    ("detector", "model"),
    ("detector", "engine_cache"),
    ("spool", "path"),
    ("sinks", "jsonl"),
    ("policy", "file"),
    ("mqtt", "tls"),
    ("mqtt", "host"),
    ("mqtt", "username"),
    ("mqtt", "password"),
    ("dashboard", "listen_host"),
    ("dashboard", "licence_url"),
    ("dashboard", "database"),
    ("dashboard", "token"),
)
READ_VALUES: Final[tuple[tuple[str, ...], ...]] = (("deployment", "purpose"),)


def _under(keys: tuple[Key, ...], patterns: Collection[tuple[str, ...]]) -> bool:
    return any(
        len(p) <= len(keys)
        and all(q in ("*", str(k).lower()) for q, k in zip(p, keys, strict=False))
        for p in patterns
    )


def _read(keys: tuple[Key, ...]) -> bool:
    return not _under(keys, UNREAD_VALUES) or _under(keys, READ_VALUES)


def find_forbidden(data: Any, where: str = "", keys: tuple[Key, ...] = ()) -> Iterator[Refusal]:
    """Every forbidden use a raw configuration tree asks for, by key or by value, with its YAML
    path (``where``, and ``keys`` to tell which values are read)."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            path = f"{where}.{shown(str(key))}" if where else shown(str(key))
            hit = match(str(key))
            if hit is not None:
                yield Refusal(path, hit.feature, hit.reason)
                continue
            yield from find_forbidden(value, path, (*keys, str(key)))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from find_forbidden(item, f"{where}[{i}]", (*keys, i))
    elif isinstance(data, str) and _read(keys):
        found = match(data)
        if found is not None:
            yield Refusal(f"{where}: {shown(data)}", found.feature, found.reason)


def find_forbidden_in_environment(
    environ: Mapping[str, str], ignore: Collection[str] = (), prefix: str = "EDGE_"
) -> Iterator[Refusal]:
    """Every forbidden use the ``EDGE_*`` variables ask for, by name or by value (JSON values
    read as the trees they set), each named by its variable; ``ignore`` lists variables that set
    no setting (their values are paths)."""
    for name in sorted(environ):
        if not name.upper().startswith(prefix) or name.upper() in ignore:
            continue
        hit = match(name[len(prefix) :])
        if hit is not None:
            yield Refusal(shown(name), hit.feature, hit.reason)
            continue
        keys = tuple(name[len(prefix) :].lower().split("__"))
        yield from find_forbidden(_parsed(environ[name]), shown(name), keys)


def _parsed(value: str) -> Any:
    """A variable's value read for words: JSON for anything that looks like a list or a section
    (``edge.config.environment_values`` reads JSON only where the setting is one)."""
    if value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


# -- model classes ---------------------------------------------------------------------------------

# Model classes that betray a forbidden use, matched on the whole class name: COCO's "fire
# hydrant" or "parking meter" are street furniture, a class named "fire" or "face" is not.
_CLASS_FEATURES: dict[str, tuple[str, ...]] = {
    "face detection or recognition": (
        "face", "faces", "human face", "head", "heads",
        "visage", "tete", "gesicht", "kopf", "cara", "rostro", "cabeza", "volto", "viso", "testa",
        "faccia",
    ),
    "licence-plate reading": (
        "plate", "license plate", "licence plate", "number plate", "car plate", "lp",
        "plaque", "plaque d immatriculation", "immatriculation", "kennzeichen", "nummernschild",
        "matricula", "placa", "placa de matricula", "targa",
    ),
    "events of décret 2023-828 (weapons, falls, intrusion, fire, crowd movement)": (
        "weapon", "gun", "handgun", "pistol", "rifle", "firearm", "fire", "smoke", "flame",
        "fall", "fallen person", "person down", "lying person",
        "arme", "arme a feu", "pistolet", "fusil", "feu", "incendie", "fumee", "flamme", "chute",
        "waffe", "pistole", "gewehr", "feuer", "rauch", "sturz",
        "arma", "arma de fuego", "pistola", "fuego", "humo", "llama", "caida",
        "arma da fuoco", "fucile", "fuoco", "fumo", "fiamma", "incendio", "caduta",
    ),
    "crowd, density or gathering alerts": (
        "crowd", "gathering", "foule", "menschenmenge", "multitud", "folla",
    ),
    "abandoned objects": (
        "abandoned object", "abandoned luggage", "unattended bag",
        "bagage abandonne", "objet abandonne", "herrenloses gepack", "equipaje abandonado",
        "bagaglio abbandonato",
    ),
}  # fmt: skip
# A class with one of these words, or these letters, is refused whatever else its name says
# ("license plate eu", "Kfz-Kennzeichen"); none is a word of COCO's 80 classes.
_CLASS_WORDS: dict[str, tuple[str, ...]] = {
    "face detection or recognition": (
        "face", "faces", "visage", "visages", "gesicht", "gesichter", "rostro", "volto",
    ),
    "licence-plate reading": (
        "plate", "plates", "plaque", "plaques", "kennzeichen", "nummernschild", "matricula",
        "targa", "targhe", "lpr", "anpr", "alpr",
    ),
    "events of décret 2023-828 (weapons, falls, intrusion, fire, crowd movement)": (
        "weapon", "weapons", "firearm", "handgun", "waffe", "waffen",
    ),
}  # fmt: skip
_CLASS_STEMS: dict[str, tuple[str, ...]] = {
    "face detection or recognition": ("gesicht", "facial", "facciale"),
    "licence-plate reading": (
        "kennzeichen", "nummernschild", "immatricul", "licenseplate", "licenceplate",
        "numberplate",
    ),
    "events of décret 2023-828 (weapons, falls, intrusion, fire, crowd movement)": (
        "weapon", "firearm", "handgun", "waffe",
    ),
}  # fmt: skip


def forbidden_class(name: str) -> Forbidden | None:
    """The forbidden use a model class name reveals, if any: the whole name in any of the five
    languages, or a plate, face or weapon word or stem in it, after folding."""
    said = words(name)
    whole, letters = " ".join(said), "".join(said)
    feature = next(
        (
            f
            for f in _CLASS_FEATURES
            if whole in _CLASS_FEATURES[f]
            or any(w in said for w in _CLASS_WORDS.get(f, ()))
            or any(s in letters for s in _CLASS_STEMS.get(f, ()))
        ),
        None,
    )
    return next((f for f in FORBIDDEN if f.feature == feature), None)


# -- names are public ------------------------------------------------------------------------------

# Titles before a person's name: English, French, German, Spanish, Italian.
_TITLES: Final = frozenset({
    "mr", "mrs", "ms", "miss", "mister", "mx", "dr", "drs", "prof",
    "mme", "mmes", "madame", "monsieur", "mlle", "mlles", "mademoiselle",
    "herr", "frau", "fraulein",
    "sr", "sra", "srta", "senor", "senora", "senorita",
    "sig", "sigg", "sigra", "signor", "signora", "signorina", "dott", "dottssa",
})  # fmt: skip
# Words of a dwelling's flat, door or floor, which with a number point at one household.
_DWELLING: Final = frozenset({
    "apt", "apts", "appt", "apartment", "flat", "door", "floor",
    "appartement", "appart", "logement", "porte", "etage",
    "wohnung", "whg", "tur", "tuer", "stock", "og",
    "piso", "puerta", "planta",
    "interno", "porta", "piano",
})  # fmt: skip
_EMAIL: Final = re.compile(r"[^\s@<>()]+@[^\s@<>()]+\.[a-z]{2,}", re.IGNORECASE)
# Nine digits or more, each group apart by at most one space, dot, dash, slash or bracket.
_PHONE: Final = re.compile(r"(?<!\d)(?:\+|00)?\d(?:[ .\-/()]?\d){8,}(?!\d)")
_TOKEN: Final = re.compile(r"[a-z]+|[0-9]+[a-z]*")
# In free text: a title, then a space and a word ("Mme Dupont", "M. Dupont"; not "10 m from").
_TITLE_BEFORE_NAME: Final = re.compile(
    r"\b(?:(" + "|".join(sorted(_TITLES)) + r")\b\.?|\b(m)\.)[ \t]+[a-z]"
)


def personal_data(text: str, *, name: bool = False) -> str | None:
    """What in ``text`` looks like personal data (a title, a flat or door number, an e-mail
    address, a phone number), or None. In a ``name`` (a slug) any title word counts; in free
    text a title counts only before another word ("Dr Martin", not "Ocean Dr,")."""
    folded = fold(text).lower()
    if _EMAIL.search(folded):
        return "an e-mail address"
    if _PHONE.search(folded):
        return "a phone number"
    tokens = _TOKEN.findall(folded)
    for here, after in zip(tokens, [*tokens[1:], ""], strict=True):
        if (here in _DWELLING and after[:1].isdigit()) or (
            here[:1].isdigit() and after in _DWELLING
        ):
            return f"a flat, door or floor number ('{here} {after}')"
    if name:
        title = next((t for t in tokens if t in _TITLES), None)
    else:
        said = _TITLE_BEFORE_NAME.search(folded)
        title = (said.group(1) or said.group(2)) if said else None
    return f"a person's title ('{title}')" if title else None


PUBLIC: Final = (
    "names are public: they travel in every report, in Home Assistant discovery, in the notice "
    "and in the dashboard"
)


def public_name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a camera id, line, zone or site name, or None: it names a
    forbidden use or looks like personal data."""
    hit = match(value)
    if hit is not None:
        return f"'{shown(value)}' names a forbidden use ({hit.feature}); {PUBLIC}"
    found = personal_data(value, name=True)
    if found is not None:
        return f"'{shown(value)}' looks like personal data ({found}); {PUBLIC}"
    return None
