"""German first and last names, and texts people type (notes, complaint summaries)."""
from __future__ import annotations

FIRST_NAMES = (
    "Anna", "Lena", "Mia", "Laura", "Sarah", "Julia", "Lisa", "Katharina", "Sophie", "Marie", "Hannah", "Lea",
    "Johanna", "Clara", "Emma", "Paula", "Nina", "Sandra", "Petra", "Sabine", "Claudia", "Monika", "Ines", "Jana",
    "Miriam", "Franziska", "Theresa", "Carolin", "Svenja", "Tanja", "Birgit", "Heike", "Ulrike", "Greta", "Ida",
    "Jonas", "Paul", "Lukas", "Felix", "Leon", "Maximilian", "Tim", "Jan", "Niklas", "Moritz", "Finn", "Tobias",
    "Stefan", "Thomas", "Michael", "Andreas", "Markus", "Florian", "Sebastian", "Daniel", "Matthias", "Philipp",
    "Alexander", "Christian", "Martin", "Frank", "Jörg", "Uwe", "Oliver", "Benedikt", "Hannes", "Emil", "Anton",
)
LAST_NAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
    "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
    "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Schmitz", "Krause", "Meier",
    "Lehmann", "Schmid", "Schulze", "Maier", "Köhler", "Herrmann", "König", "Walter", "Mayer", "Huber",
    "Kaiser", "Fuchs", "Peters", "Lang", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Schubert", "Vogel",
    "Friedrich", "Keller", "Günther", "Frank", "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann",
    "Franke", "Albrecht", "Schuster", "Simon", "Ludwig", "Böhm", "Winter", "Kraus", "Martin", "Schumacher",
    "Krämer", "Vogt", "Stein", "Jäger", "Otto", "Sommer", "Groß", "Seidel", "Heinrich", "Brandt", "Haas",
)

REMINDER_NOTES = (
    "Nachfragen, ob die Aufträge wieder angenommen werden",
    "Rückruf wegen Kundenbetreuung während der Abwesenheit",
    "Nachhaken: Rückmeldung zur Verfügbarkeit ausstehend",
    "Feedback-Gespräch vorbereiten",
    "Prüfen, ob die Aufgabenliste abgearbeitet ist",
    "Kurz anrufen: Wie läuft die Einarbeitung?",
    "Vertretung für Kundenanfragen klären",
    "Akte ergänzen und Rückmeldung geben",
    "Nachfassen nach Kundenbeschwerde",
    "Termin für Check-in abstimmen",
)
RESOLVE_NOTES = (
    "Mit der Assistentin gesprochen, alles in Ordnung",
    "Mit dem Assistenten telefoniert, Vertretung ist organisiert",
    "Geprüft, keine Auffälligkeiten",
    "Mit der VPA-Managerin abgestimmt",
    "Assistent hat sich zurückgemeldet",
    "Kunden sind informiert, Betreuung läuft weiter",
    "Nachricht geschrieben, Rückmeldung erhalten",
)
COMPLAINT_SUMMARIES = (
    "Rückruf nicht erfolgt", "Aufgabe nicht rechtzeitig erledigt", "Keine Reaktion auf E-Mails",
    "Termin verpasst", "Unvollständige Recherche", "Falsche Reiseroute gebucht",
)
ABSENCE_REASONS = {
    "planned": ("Urlaub", "Urlaub", "Urlaub", "Fortbildung", None),
    "long": ("Elternzeit", "Sabbatical", "Kur", "Reha"),
    "sick": ("Krankheit", "Krankheit", None),
    "short": ("Privat", "Familiäre Gründe", "Umzug"),
    "retro": ("Krankheit",),
}
CLEAR_NOTES = {
    "NEW_0_3": "Onboarding bereits erfolgt",
    "NEW_3_6": "Check-in-Termin steht",
    "NEW_6_9": "Klasse geprüft, Maßnahmen besprochen",
    "NEW_9_12": "Klasse geprüft, Maßnahmen besprochen",
    "NEW_GT_12": "VPA-Manager informiert, Assistent kontaktiert",
}
