//! oc's printers: the `get` tables (openshift-apiserver's printers: same columns, `-o wide`
//! extras) and the `describe` layouts (oc's describers), as strings.

use std::fmt::Write as _;

use super::objects::*;

/// Left-aligned columns separated by three spaces, like kubectl's tab writer.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let n = cells.len();
        let mut l = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            l.push_str(c);
            if i + 1 < n {
                l.push_str(&" ".repeat(widths[i] - c.chars().count() + 3));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn seconds_since(ts: &str) -> Option<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(ts).ok()?;
    Some(
        (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
            .num_seconds()
            .max(0),
    )
}

/// `2 minutes ago` (oc's STARTED and UPDATED).
pub fn ago(ts: Option<&str>) -> String {
    let Some(s) = ts.and_then(seconds_since) else {
        return String::new();
    };
    let (n, unit) = match s {
        0..=59 => (s, "second"),
        60..=3599 => (s / 60, "minute"),
        3600..=86399 => (s / 3600, "hour"),
        _ => (s / 86400, "day"),
    };
    match (n, unit) {
        (1, "minute") => "About a minute ago".into(),
        (1, "hour") => "About an hour ago".into(),
        (1, u) => format!("1 {u} ago"),
        (n, u) => format!("{n} {u}s ago"),
    }
}

/// Go's `time.Duration` string, rounded to the second (`13s`, `1m41s`, `2h0m5s`).
pub fn go_duration(nanos: Option<i64>) -> String {
    let Some(ns) = nanos else {
        return String::new();
    };
    let s = (ns + 500_000_000) / 1_000_000_000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m{}s", s / 3600, (s % 3600) / 60, s % 60),
    }
}

pub fn builds_table(builds: &[Build], wide: bool) -> String {
    let mut header = vec!["NAME", "TYPE", "FROM", "STATUS", "STARTED", "DURATION"];
    if wide {
        header.extend(["IMAGE DIGEST", "TRIGGERED BY"]);
    }
    let rows: Vec<Vec<String>> = builds
        .iter()
        .map(|b| {
            let mut r = vec![
                b.metadata.name.clone(),
                b.spec.common.type_name().to_string(),
                b.spec.common.from_column(),
                b.status_column(),
                ago(b.status.start_timestamp.as_deref()),
                go_duration(b.status.duration),
            ];
            if wide {
                r.push(b.image_digest().unwrap_or_default().to_string());
                r.push(
                    b.spec
                        .triggered_by
                        .iter()
                        .map(|c| c.message.clone())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            r
        })
        .collect();
    table(&header, &rows)
}

pub fn bcs_table(bcs: &[BuildConfig], wide: bool) -> String {
    let mut header = vec!["NAME", "TYPE", "FROM", "LATEST"];
    if wide {
        header.extend(["RUN POLICY", "TRIGGERS"]);
    }
    let rows: Vec<Vec<String>> = bcs
        .iter()
        .map(|bc| {
            let mut r = vec![
                bc.metadata.name.clone(),
                bc.spec.common.type_name().into(),
                bc.spec.common.from_column(),
                bc.status.last_version.to_string(),
            ];
            if wide {
                r.push(bc.spec.run_policy.as_str().into());
                r.push(
                    bc.spec
                        .triggers
                        .iter()
                        .map(|t| t.trigger_type.clone())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            r
        })
        .collect();
    table(&header, &rows)
}

fn tags_column(is: &ImageStream) -> String {
    let mut tags: Vec<&str> = is
        .status
        .tags
        .iter()
        .filter(|t| !t.items.is_empty())
        .map(|t| t.tag.as_str())
        .collect();
    tags.sort();
    let mut out = String::new();
    for (i, t) in tags.iter().enumerate() {
        if out.len() + t.len() > 40 && i > 0 {
            let _ = write!(out, " + {} more...", tags.len() - i);
            break;
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str(t);
    }
    out
}

fn updated(is: &ImageStream) -> Option<&str> {
    is.status
        .tags
        .iter()
        .filter_map(|t| t.items.first())
        .map(|e| e.created.as_str())
        .max()
}

pub fn streams_table(streams: &[ImageStream]) -> String {
    let rows: Vec<Vec<String>> = streams
        .iter()
        .map(|is| {
            vec![
                is.metadata.name.clone(),
                is.status.docker_image_repository.clone(),
                tags_column(is),
                ago(updated(is)),
            ]
        })
        .collect();
    table(&["NAME", "IMAGE REPOSITORY", "TAGS", "UPDATED"], &rows)
}

/// kubectl's `get secrets`: the number of keys, never their values.
pub fn secrets_table(items: &[Secret]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|x| {
            vec![
                x.metadata.name.clone(),
                x.secret_type.clone().unwrap_or_else(|| "Opaque".into()),
                x.data.len().to_string(),
                ago(x.metadata.creation_timestamp.as_deref()),
            ]
        })
        .collect();
    table(&["NAME", "TYPE", "DATA", "AGE"], &rows)
}

pub fn config_maps_table(items: &[ConfigMap]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|x| {
            vec![
                x.metadata.name.clone(),
                (x.data.len() + x.binary_data.len()).to_string(),
                ago(x.metadata.creation_timestamp.as_deref()),
            ]
        })
        .collect();
    table(&["NAME", "DATA", "AGE"], &rows)
}

pub fn istags_table(tags: &[ImageStreamTag], wide: bool) -> String {
    let mut header = vec!["NAME", "IMAGE REFERENCE", "UPDATED"];
    if wide {
        header.push("IMAGE NAME");
    }
    let rows: Vec<Vec<String>> = tags
        .iter()
        .map(|t| {
            let mut r = vec![
                t.metadata.name.clone(),
                t.image.docker_image_reference.clone(),
                ago(t.metadata.creation_timestamp.as_deref()),
            ];
            if wide {
                r.push(t.image.metadata.name.clone());
            }
            r
        })
        .collect();
    table(&header, &rows)
}

pub fn istag_view(is: &ImageStream, tag: &str, ev: &TagEvent) -> ImageStreamTag {
    let mut meta = ObjectMeta {
        name: format!("{}:{tag}", is.metadata.name),
        namespace: is.metadata.namespace.clone(),
        ..Default::default()
    };
    meta.creation_timestamp = Some(ev.created.clone());
    ImageStreamTag {
        api_version: IMAGE_API.into(),
        kind: "ImageStreamTag".into(),
        metadata: meta,
        tag: is.spec_tag(tag).cloned(),
        generation: ev.generation,
        lookup_policy: is.spec.lookup_policy.clone().unwrap_or_default(),
        image: ImageView {
            metadata: ObjectMeta {
                name: ev.image.clone(),
                ..Default::default()
            },
            docker_image_reference: ev.docker_image_reference.clone(),
        },
    }
}

fn meta_block(out: &mut String, m: &ObjectMeta) {
    let _ = writeln!(out, "Name:\t\t{}", m.name);
    let _ = writeln!(out, "Namespace:\t{}", m.namespace());
    if let Some(c) = &m.creation_timestamp {
        let _ = writeln!(out, "Created:\t{} ({c})", ago(Some(c.as_str())));
    }
    let labels: Vec<String> = m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(
        out,
        "Labels:\t\t{}",
        if labels.is_empty() {
            "<none>".into()
        } else {
            labels.join(",")
        }
    );
}

/// `oc describe is`: the tags, each with its spec and its history, newest first.
pub fn describe_stream(is: &ImageStream) -> String {
    let mut out = String::new();
    meta_block(&mut out, &is.metadata);
    let _ = writeln!(
        out,
        "Image Repository:\t{}",
        is.status.docker_image_repository
    );
    let _ = writeln!(
        out,
        "Image Lookup:\t\tlocal={}",
        is.spec.lookup_policy.as_ref().is_some_and(|l| l.local)
    );
    let mut unique: Vec<&str> = is
        .status
        .tags
        .iter()
        .flat_map(|t| t.items.iter().map(|e| e.image.as_str()))
        .collect();
    unique.sort();
    unique.dedup();
    let _ = writeln!(out, "Unique Images:\t\t{}", unique.len());
    let mut names: Vec<&str> = is
        .status
        .tags
        .iter()
        .map(|t| t.tag.as_str())
        .chain(is.spec.tags.iter().map(|t| t.name.as_str()))
        .collect();
    names.sort();
    names.dedup();
    let _ = writeln!(out, "Tags:\t\t\t{}", names.len());
    for name in names {
        out.push('\n');
        let aliases: Vec<&str> = is
            .spec
            .tags
            .iter()
            .filter(|t| {
                t.from.as_ref().is_some_and(|f| {
                    f.kind == RefKind::ImageStreamTag
                        && (f.name == name || f.name == format!("{}:{name}", is.metadata.name))
                })
            })
            .map(|t| t.name.as_str())
            .collect();
        if aliases.is_empty() {
            let _ = writeln!(out, "{name}");
        } else {
            let _ = writeln!(out, "{name} ({})", aliases.join(", "));
        }
        match is.spec_tag(name).and_then(|t| t.from.as_ref()) {
            None => {
                let _ = writeln!(out, "  no spec tag");
            }
            Some(f) if f.kind == RefKind::ImageStreamTag => {
                let _ = writeln!(out, "  tagged from {}", f.name);
            }
            Some(f) => {
                let _ = writeln!(out, "  tagged from {}", f.name);
            }
        }
        out.push('\n');
        for (i, ev) in is.tag_history(name).iter().enumerate() {
            let mark = if i == 0 { "*" } else { " " };
            let _ = writeln!(out, "  {mark} {}", ev.docker_image_reference);
            let _ = writeln!(out, "      {}", ago(Some(ev.created.as_str())));
        }
    }
    out
}

pub fn describe_build(b: &Build, log_tail: &str) -> String {
    let mut out = String::new();
    meta_block(&mut out, &b.metadata);
    let _ = writeln!(out);
    let status = match &b.status.message {
        Some(m) if !m.is_empty() => format!("{} ({m})", b.status_column()),
        _ => b.status_column(),
    };
    let _ = writeln!(out, "Status:\t\t{status}");
    let _ = writeln!(
        out,
        "Started:\t{}",
        b.status
            .start_timestamp
            .as_deref()
            .unwrap_or("<not started>")
    );
    let _ = writeln!(out, "Duration:\t{}", go_duration(b.status.duration));
    let _ = writeln!(out);
    let _ = writeln!(out, "Build Config:\t{}", b.bc_name().unwrap_or("<none>"));
    let _ = writeln!(out, "Run Policy:\t{}", b.run_policy().as_str());
    if let Some(d) = b.image_digest() {
        let _ = writeln!(out, "Image Digest:\t{d}");
    }
    common_block(&mut out, &b.spec.common);
    let _ = writeln!(out);
    for c in &b.spec.triggered_by {
        let _ = writeln!(out, "Build trigger cause:\t{}", c.message);
        if let Some(ic) = &c.image_change_build {
            let _ = writeln!(out, "Image ID:\t\t{}", ic.image_id);
            if let Some(f) = &ic.from_ref {
                let _ = writeln!(out, "Image Name/Kind:\t{} / {}", f.name, f.kind);
            }
        }
    }
    if !log_tail.is_empty() {
        let _ = writeln!(out, "\nLog Tail:");
        for l in log_tail.lines() {
            let _ = writeln!(out, "\t{l}");
        }
    }
    out
}

fn common_block(out: &mut String, c: &CommonSpec) {
    let _ = writeln!(out, "\nStrategy:\t{}", c.type_name());
    if let Some(g) = &c.source.git {
        let _ = writeln!(out, "URL:\t\t{}", g.uri);
        if let Some(r) = &g.git_ref {
            let _ = writeln!(out, "Ref:\t\t{r}");
        }
    }
    if let Some(rev) = c.revision.as_ref().and_then(|r| r.git.as_ref()) {
        let _ = writeln!(out, "Commit:\t\t{}", rev.commit);
    }
    if let Some(d) = &c.source.context_dir {
        let _ = writeln!(out, "Context Dir:\t{d}");
    }
    if let Some(df) = &c.source.dockerfile {
        let _ = writeln!(out, "Dockerfile:");
        for l in df.lines() {
            let _ = writeln!(out, "  {l}");
        }
    }
    for img in &c.source.images {
        let _ = writeln!(
            out,
            "Image Source:\tcopies {} from {}",
            img.paths
                .iter()
                .map(|p| format!("{} -> {}", p.source_path, p.destination_dir))
                .collect::<Vec<_>>()
                .join(", "),
            img.from.name
        );
    }
    if let Some(f) = c.strategy_from() {
        let _ = writeln!(out, "From Image:\t{} {}", f.kind, f.name);
    }
    if let Some(to) = &c.output.to {
        let _ = writeln!(out, "Output to:\t{} {}", to.kind, to.name);
    }
}

pub fn describe_bc(bc: &BuildConfig, builds: &[Build]) -> String {
    let mut out = String::new();
    meta_block(&mut out, &bc.metadata);
    let latest = match bc.status.last_version {
        0 => "Never built".to_string(),
        n => n.to_string(),
    };
    let _ = writeln!(out, "Latest Version:\t{latest}");
    common_block(&mut out, &bc.spec.common);
    let _ = writeln!(out, "\nBuild Run Policy:\t{}", bc.spec.run_policy.as_str());
    let triggers: Vec<String> = bc
        .spec
        .triggers
        .iter()
        .map(|t| match t.kind() {
            Some(TriggerKind::ConfigChange) => "Config".to_string(),
            Some(TriggerKind::ImageChange) => {
                match t.image_change.as_ref().and_then(|i| i.from.as_ref()) {
                    Some(f) => format!("Image(ImageStreamTag {})", f.name),
                    None => match bc.spec.common.strategy_from() {
                        Some(f) => format!("Image(ImageStreamTag {})", f.name),
                        None => "ImageChange".to_string(),
                    },
                }
            }
            _ => t.trigger_type.clone(),
        })
        .collect();
    let _ = writeln!(
        out,
        "Triggered by:\t\t{}",
        if triggers.is_empty() {
            "<none>".into()
        } else {
            triggers.join(", ")
        }
    );
    let limit = |l: Option<i32>| {
        l.map(|n| n.to_string())
            .unwrap_or_else(|| "unlimited".into())
    };
    let _ = writeln!(
        out,
        "Builds History Limit:\n\tSuccessful:\t{}\n\tFailed:\t\t{}",
        limit(bc.spec.successful_builds_history_limit),
        limit(bc.spec.failed_builds_history_limit)
    );
    let _ = writeln!(out);
    let mut recent: Vec<&Build> = builds.iter().collect();
    recent.sort_by_key(|b| std::cmp::Reverse(b.number()));
    let rows: Vec<Vec<String>> = recent
        .iter()
        .take(10)
        .map(|b| {
            vec![
                b.metadata.name.clone(),
                b.status_column(),
                go_duration(b.status.duration),
                b.metadata.creation_timestamp.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&table(
        &["Build", "Status", "Duration", "Creation Time"],
        &rows,
    ));
    out
}

pub fn describe_istag(t: &ImageStreamTag) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Image Name:\t{}", t.metadata.name);
    let _ = writeln!(out, "Namespace:\t{}", t.metadata.namespace());
    let _ = writeln!(
        out,
        "Created:\t{}",
        ago(t.metadata.creation_timestamp.as_deref())
    );
    let _ = writeln!(out, "Image:\t\t{}", t.image.metadata.name);
    let _ = writeln!(out, "Image Reference:\t{}", t.image.docker_image_reference);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_like_oc() {
        let t = table(
            &["NAME", "LATEST"],
            &[
                vec!["golang-builder".into(), "1".into()],
                vec!["x".into(), "12".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME             LATEST\ngolang-builder   1\nx                12\n"
        );
    }

    #[test]
    fn durations_are_gos() {
        assert_eq!(go_duration(Some(13_200_000_000)), "13s");
        assert_eq!(go_duration(Some(101_000_000_000)), "1m41s");
        assert_eq!(go_duration(None), "");
        assert_eq!(
            ago(Some(chrono::Utc::now().to_rfc3339().as_str())),
            "0 seconds ago"
        );
    }

    #[test]
    fn describe_is_shows_history_newest_first() {
        let mut is = ImageStream::default();
        is.metadata.name = "app".into();
        is.status.docker_image_repository = "app".into();
        let ev = |d: &str| TagEvent {
            created: chrono::Utc::now().to_rfc3339(),
            docker_image_reference: format!("app@sha256:{d}"),
            image: format!("sha256:{d}"),
            generation: 1,
        };
        is.status.tags.push(NamedTagEventList {
            tag: "1.0".into(),
            items: vec![ev("bbb"), ev("aaa")],
        });
        let d = describe_stream(&is);
        assert!(d.contains("Unique Images:\t\t2"), "{d}");
        let star = d.find("* app@sha256:bbb").expect(&d);
        let old = d.find("  app@sha256:aaa").expect(&d);
        assert!(star < old, "{d}");
        assert!(d.contains("no spec tag"), "{d}");
    }
}
