//! `WWW-Authenticate` parsing (RFC 7235): one header may carry several challenges, each a
//! scheme followed by `name=value` pairs whose quoted values can contain commas and escapes.

/// One authentication challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Challenge {
    /// Scheme, lowercased (`basic`, `bearer`).
    pub scheme: String,
    /// Parameters with lowercased names, in order.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (lowercase).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is a Bearer challenge.
    pub fn is_bearer(&self) -> bool {
        self.scheme == "bearer"
    }

    /// Whether this is a Basic challenge.
    pub fn is_basic(&self) -> bool {
        self.scheme == "basic"
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        (self.pos > start).then(|| String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    /// A quoted string after its opening quote; a missing closing quote ends at the input end.
    fn quoted(&mut self) -> String {
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.pos += 1;
                    }
                }
                other => out.push(other),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Tries `name = value`; on anything else rewinds and returns `None`, which means the next
    /// word starts a new challenge.
    fn param(&mut self) -> Option<(String, String)> {
        let start = self.pos;
        let parsed = (|| {
            let name = self.token()?;
            self.skip_ws();
            if self.peek() != Some(b'=') {
                return None;
            }
            self.pos += 1;
            self.skip_ws();
            let value = if self.peek() == Some(b'"') {
                self.pos += 1;
                self.quoted()
            } else {
                // Tolerate token68-style values such as base64 with trailing `=`.
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|b| is_tchar(b) || b == b'=' || b == b'/')
                {
                    self.pos += 1;
                }
                String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
            };
            Some((name.to_ascii_lowercase(), value))
        })();
        if parsed.is_none() {
            self.pos = start;
        }
        parsed
    }
}

/// Parses every challenge in one `WWW-Authenticate` value; unparseable tails are dropped.
pub(super) fn parse(header: &str) -> Vec<Challenge> {
    let mut c = Cursor {
        s: header.as_bytes(),
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        c.skip_ws_and_commas();
        let Some(scheme) = c.token() else { break };
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        loop {
            c.skip_ws_and_commas();
            match c.param() {
                Some(p) => challenge.params.push(p),
                None => break,
            }
        }
        out.push(challenge);
        // Skip a token68 or garbage we could not read as parameters.
        if c.peek()
            .is_some_and(|b| !is_tchar(b) && !matches!(b, b' ' | b'\t' | b','))
        {
            while c.peek().is_some_and(|b| b != b',') {
                c.pos += 1;
            }
        }
    }
    out
}

/// The challenge to act on among all `WWW-Authenticate` headers: Bearer wins over Basic
/// because it is what registries that offer both prefer.
pub(super) fn pick<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let all: Vec<Challenge> = values.flat_map(parse).collect();
    all.iter()
        .find(|c| c.is_bearer())
        .or_else(|| all.iter().find(|c| c.is_basic()))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn docker_hub_bearer() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#;
        let cs = parse(h);
        assert_eq!(cs.len(), 1);
        assert!(cs[0].is_bearer());
        assert_eq!(
            params(&cs[0]),
            vec![
                ("realm", "https://auth.docker.io/token"),
                ("service", "registry.docker.io"),
                ("scope", "repository:library/nginx:pull"),
            ]
        );
    }

    #[test]
    fn quoted_commas_escapes_and_spacing() {
        let h = r#"bearer  REALM = "http://h/t?a=1,b=2" , scope="repository:a:pull,push repository:b:pull", error="say \"hi\"\\""#;
        let cs = parse(h);
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].scheme, "bearer");
        assert_eq!(cs[0].param("realm"), Some("http://h/t?a=1,b=2"));
        assert_eq!(
            cs[0].param("scope"),
            Some("repository:a:pull,push repository:b:pull")
        );
        assert_eq!(cs[0].param("error"), Some(r#"say "hi"\"#));
    }

    #[test]
    fn basic_and_multiple_challenges() {
        let cs = parse(r#"Basic realm="basic-realm""#);
        assert_eq!(cs.len(), 1);
        assert!(cs[0].is_basic());
        assert_eq!(cs[0].param("realm"), Some("basic-realm"));

        let cs = parse(r#"Basic realm="a, b", Bearer realm="https://t/token",service=reg"#);
        assert_eq!(cs.len(), 2);
        assert!(cs[0].is_basic());
        assert_eq!(cs[0].param("realm"), Some("a, b"));
        assert!(cs[1].is_bearer());
        assert_eq!(cs[1].param("service"), Some("reg"));

        let picked = pick([r#"Basic realm="x""#, r#"Bearer realm="y""#].into_iter()).unwrap();
        assert!(picked.is_bearer());
        let picked = pick([r#"Basic realm="x""#].into_iter()).unwrap();
        assert!(picked.is_basic());
        assert_eq!(pick(std::iter::empty()), None);
    }

    #[test]
    fn bare_scheme_token68_and_garbage() {
        let cs = parse("Bearer");
        assert_eq!(cs.len(), 1);
        assert!(cs[0].params.is_empty());

        let cs = parse("Negotiate abc==, Basic realm=x");
        let schemes: Vec<&str> = cs.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["negotiate", "basic"]);
        assert_eq!(cs.last().unwrap().param("realm"), Some("x"));

        let cs = parse(r#"Bearer realm="unterminated"#);
        assert_eq!(cs[0].param("realm"), Some("unterminated"));
        assert!(parse("").is_empty());
        assert!(parse(" , ,").is_empty());
    }
}
