"""A small schema (school, library, clinic; about 80 tables with copies) and questions with known tables.

A different domain from ``bench/schema_gen.py`` on purpose: the ranking must not only work on the schema it
was benchmarked on. Tests force the selection path with a small token budget.
"""

from __future__ import annotations

import random

CORE = {
    "school": [
        ("students", "Pupils enrolled at the school", "id int, first_name text, last_name text, birth_date date, "
         "class_id int -> school.classes"),
        ("classes", "Form groups such as 5B", "id int, name text, year_level int, homeroom_teacher_id int -> "
         "school.teachers"),
        ("teachers", "Teaching staff", "id int, name text, subject text, hired_on date"),
        ("courses", "Subjects taught, per year level", "id int, title text, year_level int, teacher_id int -> "
         "school.teachers"),
        ("enrollments", "Which student follows which course", "id int, student_id int -> school.students, "
         "course_id int -> school.courses, enrolled_on date"),
        ("grades", "Marks students received in assessments", "id int, enrollment_id int -> school.enrollments, "
         "assessment text, mark numeric(4,1), graded_on date"),
        ("absences", "Days a student missed school, excused or not", "id int, student_id int -> school.students, "
         "absent_on date, excused boolean, reason text"),
        ("rooms", "Classrooms and labs", "id int, code text, capacity int"),
        ("timetable_slots", "Weekly timetable: course, room and time", "id int, course_id int -> school.courses, "
         "room_id int -> school.rooms, weekday int, starts_at time"),
    ],
    "library": [
        ("books", "Titles in the library catalogue", "id int, isbn text, title text, published_year int"),
        ("authors", "Writers", "id int, name text, nationality text"),
        ("book_authors", "Which author wrote which book", "book_id int -> library.books, author_id int -> "
         "library.authors"),
        ("copies", "Physical copies of books on the shelves", "id int, book_id int -> library.books, barcode text, "
         "shelf text"),
        ("members", "People with a library card", "id int, name text, joined_on date, student_id int -> "
         "school.students"),
        ("loans", "Borrowed copies and when they are due back", "id int, copy_id int -> library.copies, "
         "member_id int -> library.members, borrowed_on date, due_on date, returned_on date"),
        ("fines", "Late fees charged to members", "id int, loan_id int -> library.loans, amount numeric(6,2), "
         "paid boolean"),
    ],
    "clinic": [
        ("patients", "People treated at the clinic", "id int, name text, birth_date date, insurer text"),
        ("doctors", "Physicians and their specialty", "id int, name text, specialty text"),
        ("appointments", "Scheduled visits of patients with a doctor", "id int, patient_id int -> "
         "clinic.patients, doctor_id int -> clinic.doctors, scheduled_at timestamptz, status text"),
        ("prescriptions", "Medications prescribed at a visit", "id int, appointment_id int -> "
         "clinic.appointments, medication_id int -> clinic.medications, dosage text, days int"),
        ("medications", "Drugs the pharmacy stocks", "id int, name text, unit_price numeric(8,2)"),
        ("lab_results", "Blood tests and other lab results", "id int, patient_id int -> clinic.patients, test "
         "text, value numeric, measured_at timestamptz"),
    ],
}

QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("Which students missed more than five days this term?", ("school.absences", "school.students")),
    ("Average mark per course", ("school.grades", "school.enrollments", "school.courses")),
    ("Which books are overdue and who borrowed them?", ("library.loans", "library.members", "library.copies",
                                                         "library.books")),
    ("Total unpaid late fees per member", ("library.fines", "library.loans", "library.members")),
    ("Books written by Japanese authors", ("library.books", "library.book_authors", "library.authors")),
    ("How many appointments did each doctor have last week?", ("clinic.appointments", "clinic.doctors")),
    ("Most prescribed medication", ("clinic.prescriptions", "clinic.medications")),
    ("Patients with a cholesterol lab result above 240", ("clinic.lab_results", "clinic.patients")),
    ("Which rooms are used on Mondays?", ("school.timetable_slots", "school.rooms")),
    ("Who is the homeroom teacher of class 5B?", ("school.classes", "school.teachers")),
    ("Students who are also library members", ("library.members", "school.students")),
    ("Number of pupils per year level", ("school.students", "school.classes")),
]

_AFFIXES = ("backup", "archive_2021", "archive_2022", "old", "stg", "tmp", "history")


def ddl(*, seed: int = 3) -> str:
    """All core tables, two to three copies of each, comments and foreign keys, as one SQL script."""
    rng = random.Random(seed)
    lines = [f"CREATE SCHEMA {schema};" for schema in CORE]
    fks = []
    for schema, tables in CORE.items():
        for name, comment, columns in tables:
            cols = []
            for i, part in enumerate(columns.split(", ")):
                definition, _, target = part.partition(" -> ")
                cols.append(definition + (" PRIMARY KEY" if i == 0 and definition.startswith("id ") else ""))
                if target:
                    fks.append(f"ALTER TABLE {schema}.{name} ADD FOREIGN KEY ({definition.split()[0]}) "
                               f"REFERENCES {target} (id);")
            lines.append(f"CREATE TABLE {schema}.{name} ({', '.join(cols)});")
            lines.append(f"COMMENT ON TABLE {schema}.{name} IS '{comment}';")
            plain = ", ".join(c.partition(" -> ")[0] for c in columns.split(", "))
            for affix in rng.sample(_AFFIXES, rng.randint(2, 3)):
                copy = f"{affix}_{name}" if affix in ("stg", "tmp") else f"{name}_{affix}"
                lines.append(f"CREATE TABLE {schema}.{copy} ({plain}, loaded_at timestamptz);")
                lines.append(f"COMMENT ON TABLE {schema}.{copy} IS 'Copy of {schema}.{name}';")
    return "\n".join(lines + fks)
