"""Every morning, turn yesterday's numbers into a PDF and send it through an approved WhatsApp template.

A scheduled report usually goes to someone who has not written to the business in the last 24 hours,
so it must be an approved template (a free-form message would fail with error 131047). The template
``daily_report`` (language ``en_US``) is expected to have a DOCUMENT header and a body with two
placeholders, e.g. "Sales report for {{1}}: {{2}} orders." Meta accepts PDF documents in template
headers, so the data is rendered as a small PDF (the CSV stays beside it for whoever needs the raw rows).

The report is written under ``params.report_dir``: any ObjectStoragePath URL Airflow understands
(``file:///tmp/...`` by default; ``s3://bucket/reports/`` when the tasks run on different machines).
The send operator uploads the file through the media endpoint, then sends the template with the
uploaded id: one operator. The recipient comes from the Airflow Variable ``whatsapp_report_recipient``,
else from ``params.recipient``.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import date, datetime, timedelta
from typing import Any

from airflow_provider_whatsapp.operators.messages import WhatsAppSendTemplateOperator

try:  # Airflow 3
    from airflow.sdk import DAG, ObjectStoragePath, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task
    from airflow.io.path import ObjectStoragePath

REGIONS = ("North", "South", "East", "West")


def daily_sales(day: date) -> list[dict[str, object]]:
    """Stand-in for a warehouse query: the same numbers for the same day, every run."""
    rng = random.Random(day.toordinal())
    return [
        {"region": region, "orders": rng.randint(40, 400), "revenue": round(rng.uniform(900, 9000), 2)}
        for region in REGIONS
    ]


def to_csv(rows: list[dict[str, object]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def to_pdf(title: str, lines: list[str]) -> bytes:
    """A one-page PDF of monospaced text lines, written by hand to need no PDF library."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    shown = " ".join(f"({escape(line)}) '" for line in [title, "", *lines])
    stream = f"BT /F1 11 Tf 56 790 Td 16 TL {shown} ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>",
    ]
    pdf = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(pdf)
    pdf += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    pdf += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    pdf += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return pdf


with DAG(
    dag_id="example_whatsapp_report",
    description="Send yesterday's sales report as a PDF through an approved WhatsApp template",
    schedule="0 7 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"recipient": "+1 415 555 0100", "report_dir": "file:///tmp/whatsapp_reports"},
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["example", "whatsapp"],
) as dag:

    @task
    def build_report(dag_run: Any = None, params: dict | None = None) -> dict[str, str]:
        """Query yesterday's numbers, store them as CSV and PDF; return the PDF's URL and a summary."""
        # Runs triggered without a logical date (Airflow 3: REST API, `airflow dags trigger`) have none.
        day = (dag_run.logical_date or dag_run.run_after).date() - timedelta(days=1)
        rows = daily_sales(day)
        folder = ObjectStoragePath((params or {}).get("report_dir") or "file:///tmp/whatsapp_reports")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"sales_{day}.csv").write_bytes(to_csv(rows))
        lines = [f"{'Region':<10}{'Orders':>8}{'Revenue':>14}"]
        lines += [f"{r['region']:<10}{r['orders']:>8}{r['revenue']:>14,.2f}" for r in rows]
        orders = sum(int(r["orders"]) for r in rows)  # type: ignore[call-overload]
        lines += ["", f"{'Total':<10}{orders:>8}"]
        pdf = folder / f"sales_{day}.pdf"
        pdf.write_bytes(to_pdf(f"Sales report {day}", lines))
        return {"pdf": str(pdf), "day": str(day), "orders": str(orders)}

    report = build_report()

    send_report = WhatsAppSendTemplateOperator(
        task_id="send_report",
        to="{{ var.value.get('whatsapp_report_recipient', params.recipient) }}",
        template_name="daily_report",
        language_code="en_US",
        header={
            "type": "document",
            "file_path": "{{ ti.xcom_pull(task_ids='build_report')['pdf'] }}",
            "filename": "sales_{{ ti.xcom_pull(task_ids='build_report')['day'] }}.pdf",
        },
        body_parameters=[
            "{{ ti.xcom_pull(task_ids='build_report')['day'] }}",
            "{{ ti.xcom_pull(task_ids='build_report')['orders'] }}",
        ],
    )

    report >> send_report
