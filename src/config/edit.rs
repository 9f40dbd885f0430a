//! Format-preserving edits of the user layer (`registry add` and `registry remove`): a
//! `[registries.NAME]` table inserted, replaced or removed and `default_registry` set or cleared
//! in the document as the user wrote it, so every comment, blank line and key order elsewhere in
//! the file stays as it was. What is written must load: the edited text is parsed and checked
//! like any configuration before it replaces the file (atomically). The entries themselves are
//! checked by the caller (`RegistryEntry::check`) before they get here.

use super::{Config, ConfigError, RegistryEntry};
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item, Table, Value};

/// A configuration file being edited.
pub struct ConfigEdit {
    path: PathBuf,
    doc: DocumentMut,
}

impl ConfigEdit {
    /// Reads the file at `path` (a missing file is an empty document).
    pub fn open(path: &Path) -> Result<ConfigEdit, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.into(),
                    source,
                })
            }
        };
        let doc = text
            .parse::<DocumentMut>()
            .map_err(|e| ConfigError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?;
        Ok(ConfigEdit {
            path: path.into(),
            doc,
        })
    }

    /// Inserts `[registries.NAME]`, or replaces it where it is (keeping the comments above it).
    pub fn set_registry(&mut self, name: &str, entry: &RegistryEntry) -> Result<(), ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(m);
        let text = toml::to_string(entry).map_err(|e| invalid(e.to_string()))?;
        let mut table = text
            .parse::<DocumentMut>()
            .map_err(|e| invalid(e.to_string()))?
            .as_table()
            .clone();
        table.set_implicit(false);
        let registries = self.doc.entry("registries").or_insert_with(|| {
            let mut t = Table::new();
            // Only `[registries.NAME]` headers, no empty `[registries]`.
            t.set_implicit(true);
            Item::Table(t)
        });
        match registries {
            Item::Table(t) => {
                if let Some(Item::Table(old)) = t.get(name) {
                    *table.decor_mut() = old.decor().clone();
                    if let Some(pos) = old.position() {
                        table.set_position(pos);
                    }
                }
                t.insert(name, Item::Table(table));
            }
            Item::Value(Value::InlineTable(t)) => {
                t.insert(name, Value::InlineTable(table.into_inline_table()));
            }
            _ => {
                return Err(ConfigError::Parse {
                    path: self.path.clone(),
                    message: "`registries` is not a table".into(),
                })
            }
        }
        Ok(())
    }

    /// Removes `[registries.NAME]`; false if it was not there.
    pub fn remove_registry(&mut self, name: &str) -> bool {
        self.doc
            .get_mut("registries")
            .and_then(Item::as_table_like_mut)
            .and_then(|t| t.remove(name))
            .is_some()
    }

    /// Sets `default_registry` (keeping a comment after its value), or removes it.
    pub fn set_default_registry(&mut self, name: Option<&str>) {
        let Some(name) = name else {
            self.doc.remove("default_registry");
            return;
        };
        match self
            .doc
            .get_mut("default_registry")
            .and_then(Item::as_value_mut)
        {
            Some(v) => {
                let decor = v.decor().clone();
                *v = Value::from(name);
                *v.decor_mut() = decor;
            }
            None => {
                self.doc.insert("default_registry", toml_edit::value(name));
            }
        }
    }

    /// The edited text.
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// Checks that the edited text loads, then replaces the file with it atomically.
    pub fn save(&self) -> Result<(), ConfigError> {
        let text = self.text();
        Config::parse(&self.path, &text)?;
        let io = |source| ConfigError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join(format!(".config.toml.{}", std::process::id()));
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMENTED: &str = r#"# my gantry config
default_registry = "chainguard" # the public one

# Chainguard's images, signed in CI
[registries.chainguard]
url = "docker.io/chainguard"   # keep this
issuer = "https://token.actions.githubusercontent.com"
identity_regex = "https://github.com/chainguard-images/images/.*"

[limits]
# one GiB is enough here
max_total_bytes = 1073741824
"#;

    fn edit(text: &str) -> (tempfile::TempDir, ConfigEdit) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.toml");
        std::fs::write(&p, text).unwrap();
        let e = ConfigEdit::open(&p).unwrap();
        (d, e)
    }

    #[test]
    fn add_and_remove_keep_every_comment_and_the_layout() {
        let (_d, mut e) = edit(COMMENTED);
        e.set_registry("corp", &RegistryEntry::new("registry.corp.example/team"))
            .unwrap();
        e.set_default_registry(Some("corp"));
        e.save().unwrap();
        let added = e.text();
        // The new table goes after the other registries, and nothing else moves.
        assert_eq!(
            added,
            COMMENTED
                .replace(
                    "default_registry = \"chainguard\" # the public one",
                    "default_registry = \"corp\" # the public one"
                )
                .replace(
                    "\n[limits]",
                    "\n[registries.corp]\nurl = \"registry.corp.example/team\"\n\n[limits]"
                )
        );
        let cfg = Config::parse(Path::new("c.toml"), &added).unwrap();
        assert_eq!(cfg.default_registry.as_deref(), Some("corp"));
        assert!(e.remove_registry("corp"));
        assert!(!e.remove_registry("corp"));
        e.set_default_registry(Some("chainguard"));
        assert_eq!(e.text(), COMMENTED);
    }

    #[test]
    fn replacing_an_entry_keeps_its_place_and_the_comment_above_it() {
        let (_d, mut e) = edit(COMMENTED);
        let mut cg = RegistryEntry::new("cgr.dev/chainguard");
        cg.always_allow_unsigned = true;
        e.set_registry("chainguard", &cg).unwrap();
        let t = e.text();
        assert!(
            t.contains("# Chainguard's images, signed in CI\n[registries.chainguard]\nurl = \"cgr.dev/chainguard\"\nalways_allow_unsigned = true\n"),
            "{t}"
        );
        assert!(
            t.find("[registries.chainguard]") < t.find("[limits]"),
            "{t}"
        );
    }

    #[test]
    fn an_edit_that_would_not_load_is_not_written() {
        let (d, mut e) = edit("[registries.a]\nurl = \"a.example\"\n");
        e.set_default_registry(Some("missing"));
        assert!(e.save().is_err());
        assert_eq!(
            std::fs::read_to_string(d.path().join("config.toml")).unwrap(),
            "[registries.a]\nurl = \"a.example\"\n"
        );
    }
}
