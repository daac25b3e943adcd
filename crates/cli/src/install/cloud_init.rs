//! `vupdate updater cloud-init`: a cloud-config user-data document that runs the
//! one-line install on a VM's first boot.

/// What the document installs.
#[derive(Debug)]
pub struct CloudInit {
    /// The distribution, `http(s)://host[:port]`.
    pub distribution_url: String,
    /// An enrolment token (short-lived, limited uses: user-data is readable by whoever
    /// can read the cloud's instance metadata).
    pub token: String,
    /// The services, `a,b-role` (default: the token's).
    pub services: Option<String>,
    /// The instance name (default: the VM's host name).
    pub instance: Option<String>,
    /// A self-signed distribution's key, pinned from the first download on.
    pub pinned_public_key: Option<vupdate_client::PublicKeyPin>,
}

/// `text` as one shell word.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:/@=+".contains(c))
    {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl CloudInit {
    /// The install line this document runs.
    pub fn line(&self) -> String {
        let url = self.distribution_url.trim_end_matches('/');
        // The token goes to the script in its environment, not on a command line.
        let curl = match &self.pinned_public_key {
            Some(pin) => format!(
                "curl -fsSL --pinnedpubkey {} -k",
                shell_word(&pin.to_string())
            ),
            None => "curl -fsSL".to_owned(),
        };
        let mut line = format!(
            "{curl} {} | VUPDATE_ENROLMENT_TOKEN={} sh -s --",
            shell_word(&format!("{url}/install/updater.sh")),
            shell_word(&self.token)
        );
        if let Some(pin) = &self.pinned_public_key {
            line.push_str(&format!(
                " --pinned-public-key {}",
                shell_word(&pin.to_string())
            ));
        }
        for (flag, value) in [
            ("--services", &self.services),
            ("--instance", &self.instance),
        ] {
            if let Some(value) = value {
                line.push_str(&format!(" {flag} {}", shell_word(value)));
            }
        }
        line
    }

    /// The user-data document.
    pub fn document(&self) -> String {
        // A JSON string is a YAML double-quoted scalar.
        let line = serde_json::Value::from(self.line()).to_string();
        format!(
            "#cloud-config\n\
             # Installs the vupdate updater on first boot (`vupdate updater cloud-init`): it\n\
             # downloads the updater from the distribution, checks its SHA-256, enrols this VM\n\
             # with the token (short-lived, limited uses) and starts vupdate-updater.service.\n\
             runcmd:\n  - [sh, -c, {line}]\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_runs_the_install_line_with_every_word_quoted() {
        let document = CloudInit {
            distribution_url: "https://dist.example.com:8443/".into(),
            token: "vue_abc".into(),
            services: Some("api,worker-eu".into()),
            instance: Some("it's me".into()),
            pinned_public_key: None,
        }
        .document();
        assert!(document.starts_with("#cloud-config\n"), "{document}");
        assert!(document.contains(
            r#"  - [sh, -c, "curl -fsSL https://dist.example.com:8443/install/updater.sh | VUPDATE_ENROLMENT_TOKEN=vue_abc sh -s -- --services api,worker-eu --instance 'it'\\''s me'"]"#
        ), "{document}");
        let pin: vupdate_client::PublicKeyPin =
            "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
                .parse()
                .expect("a pin");
        let pinned = CloudInit {
            distribution_url: "https://10.0.0.5:8443".into(),
            token: "vue_abc".into(),
            services: None,
            instance: None,
            pinned_public_key: Some(pin),
        }
        .line();
        assert_eq!(
            pinned,
            "curl -fsSL --pinnedpubkey sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= -k https://10.0.0.5:8443/install/updater.sh | VUPDATE_ENROLMENT_TOKEN=vue_abc sh -s -- --pinned-public-key sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
