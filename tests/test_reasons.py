"""A platform's reason as a person reads it: an HTML error page becomes its title."""

from __future__ import annotations

import httpx

from scheduler.platforms.http import short_body

NGINX = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def test_an_html_error_page_is_its_title() -> None:
    page = httpx.Response(502, text=NGINX, headers={"content-type": "text/html"})
    assert short_body(page) == "502 Bad Gateway"


def test_an_html_page_without_a_title_is_its_first_line_of_text() -> None:
    page = httpx.Response(503, text="<html><body>\n<p>Down for maintenance</p>\n</body></html>")
    assert short_body(page) == "Down for maintenance"


def test_a_plain_answer_stays_as_it_is_and_a_long_one_is_cut() -> None:
    assert short_body(httpx.Response(500, text="database is locked")) == "database is locked"
    assert short_body(httpx.Response(500, text="x" * 300)) == "x" * 200 + "…"
