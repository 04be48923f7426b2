//! `*.md` → HTML through a small template.

use pulldown_cmark::{html, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// The page used when the site brings no template of its own. It has no
/// inline styles or scripts, so the default CSP does not get in its way.
pub const DEFAULT_TEMPLATE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n\
<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{{title}}</title>\n</head>\n<body>\n<main>\n{{content}}</main>\n</body>\n</html>\n";

/// Renders Markdown into `template` (`{{title}}`: the first heading's text,
/// else `fallback_title`; `{{content}}`: the HTML). Relative links to `x.md`
/// become `x.html`, since that is what gets served.
pub fn render(markdown: &str, template: &str, fallback_title: &str) -> String {
    let opts = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES;
    let mut title: Option<String> = None;
    let mut in_heading = false;
    let events: Vec<Event<'_>> = Parser::new_ext(markdown, opts)
        .map(|ev| {
            match &ev {
                Event::Start(Tag::Heading { level, .. })
                    if title.is_none() && *level <= HeadingLevel::H2 =>
                {
                    in_heading = true;
                    title = Some(String::new());
                }
                Event::End(TagEnd::Heading(_)) => in_heading = false,
                Event::Text(t) | Event::Code(t) if in_heading => {
                    if let Some(title) = title.as_mut() {
                        title.push_str(t);
                    }
                }
                _ => {}
            }
            match ev {
                Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }) => Event::Start(Tag::Link {
                    link_type,
                    dest_url: md_link_to_html(dest_url),
                    title,
                    id,
                }),
                other => other,
            }
        })
        .collect();
    let mut body = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut body, events.into_iter());
    let title = title
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| fallback_title.to_string());
    // One pass, so that `{{content}}` inside the title or the body stays literal.
    let mut out = String::with_capacity(template.len() + body.len());
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(r) = after.strip_prefix("{{title}}") {
            out.push_str(&escape_html(&title));
            rest = r;
        } else if let Some(r) = after.strip_prefix("{{content}}") {
            out.push_str(&body);
            rest = r;
        } else {
            out.push_str("{{");
            rest = &after[2..];
        }
    }
    out.push_str(rest);
    out
}

fn md_link_to_html(url: CowStr<'_>) -> CowStr<'_> {
    let is_relative = !url.contains("://") && !url.starts_with("//") && !url.starts_with("mailto:");
    let (path, suffix) = match url.find(['#', '?']) {
        Some(i) => url.split_at(i),
        None => (&url[..], ""),
    };
    if is_relative && path.len() > 3 && path.ends_with(".md") {
        CowStr::from(format!("{}.html{suffix}", &path[..path.len() - 3]))
    } else {
        url
    }
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_into_the_template_with_the_first_heading_as_title() {
        let out = render("# Hello & `World`\n\nSome *text*.\n", DEFAULT_TEMPLATE, "x");
        assert!(out.starts_with("<!DOCTYPE html>"));
        assert!(out.contains("<title>Hello &amp; World</title>"), "{out}");
        assert!(out.contains("<h1>Hello &amp; <code>World</code></h1>"));
        assert!(out.contains("<em>text</em>"));
    }

    #[test]
    fn falls_back_to_the_file_name_and_keeps_braces_literal() {
        let out = render(
            "no heading {{content}}\n",
            "[{{title}}|{{content}}|{{other}}]",
            "notes",
        );
        assert_eq!(out, "[notes|<p>no heading {{content}}</p>\n|{{other}}]");
    }

    #[test]
    fn links_to_markdown_pages_point_at_their_html() {
        let out = render(
            "[a](guide.md) [b](guide.md#x) [c](https://x.org/r.md) [d](img.png) [e](.md)\n",
            "{{content}}",
            "t",
        );
        assert!(out.contains("href=\"guide.html\""), "{out}");
        assert!(out.contains("href=\"guide.html#x\""));
        assert!(out.contains("href=\"https://x.org/r.md\""));
        assert!(out.contains("href=\"img.png\""));
        assert!(out.contains("href=\".md\""));
    }

    #[test]
    fn tables_render() {
        let out = render("| a | b |\n|---|---|\n| 1 | 2 |\n", "{{content}}", "t");
        assert!(out.contains("<table>"));
    }
}
