//! "Did you mean" for unknown package names: edit distance and prefixes.

/// Up to `limit` names nearest to `wanted`: small edit distance first, then names that extend it.
pub(crate) fn nearest<'a>(
    wanted: &str,
    names: impl Iterator<Item = &'a str>,
    limit: usize,
) -> Vec<String> {
    let max = if wanted.len() >= 8 { 3 } else { 2 };
    let mut scored: Vec<(usize, usize, &str)> = Vec::new();
    for name in names {
        if name == wanted {
            continue;
        }
        let prefix = wanted.len() >= 3 && name.starts_with(wanted);
        if !prefix && name.len().abs_diff(wanted.len()) > max {
            continue;
        }
        let d = levenshtein(wanted, name);
        if d <= max {
            scored.push((d, name.len(), name));
        } else if prefix {
            scored.push((max + 1, name.len(), name));
        }
    }
    scored.sort_unstable();
    scored.dedup_by(|a, b| a.2 == b.2);
    scored
        .into_iter()
        .take(limit)
        .map(|(_, _, n)| n.to_string())
        .collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names() {
        let names = [
            "ffmpeg",
            "ffmpegthumbnailer",
            "python3",
            "python3-pip",
            "jq",
            "jo",
            "libjq1",
        ];
        assert_eq!(nearest("ffmpg", names.iter().copied(), 3), vec!["ffmpeg"]);
        assert_eq!(
            nearest("pyhton3", names.iter().copied(), 2),
            vec!["python3"]
        );
        let jq = nearest("jqq", names.iter().copied(), 5);
        assert_eq!(jq[0], "jq");
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
