//! Typed paths of what Strata keeps in the bucket:
//!
//! ```text
//! <tenant>/bucket-index.json
//! <tenant>/<block-id>/meta.json
//! <tenant>/<block-id>/labels.parquet
//! <tenant>/<block-id>/chunks.parquet
//! <tenant>/<block-id>/deletion-mark.json
//! ```
//! Each part is escaped by `object_store`'s path rules, so a tenant name cannot reach outside its
//! folder.
use object_store::path::{Path, PathPart};

pub const META: &str = "meta.json";
pub const LABELS: &str = "labels.parquet";
pub const CHUNKS: &str = "chunks.parquet";
pub const DELETION_MARK: &str = "deletion-mark.json";
pub const BUCKET_INDEX: &str = "bucket-index.json";

/// The tenant whose folder is the path part `part` as a listing returns it (escaped: tenant
/// `a*b` lives in `a%2Ab`); `None` for a folder no tenant name escapes to.
pub fn tenant_of(part: &PathPart<'_>) -> Option<String> {
    let name = percent_encoding::percent_decode_str(part.as_ref()).decode_utf8().ok()?;
    (PathPart::from(name.as_ref()) == *part).then(|| name.into_owned())
}

/// The tenant of a folder named as it lies in the bucket (a path or URL a user copied): its
/// escaped form decoded (`a%2Ab` is tenant `a*b`); a name that is no tenant's escaped folder
/// (typed unescaped, say) is taken as it is.
pub fn tenant_of_folder(name: &str) -> String {
    PathPart::parse(name).ok().and_then(|p| tenant_of(&p)).unwrap_or_else(|| name.to_string())
}

pub fn tenant(tenant: &str) -> Path {
    Path::from_iter([PathPart::from(tenant)])
}

pub fn block(tenant: &str, block_id: &str) -> Path {
    Path::from_iter([PathPart::from(tenant), PathPart::from(block_id)])
}

pub fn block_file(tenant: &str, block_id: &str, file: &str) -> Path {
    Path::from_iter([PathPart::from(tenant), PathPart::from(block_id), PathPart::from(file)])
}

pub fn bucket_index(tenant: &str) -> Path {
    Path::from_iter([PathPart::from(tenant), PathPart::from(BUCKET_INDEX)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_folders_name_their_tenant_back() {
        for t in ["anonymous", "a*b", "team-1_x.y", "o'k(1)!", "%41"] {
            let path = tenant(t);
            let part = path.parts().next().expect("one part");
            assert_eq!(tenant_of(&part).as_deref(), Some(t), "{t} → {path}");
            assert_eq!(tenant_of_folder(part.as_ref()), t, "{t} → {path}");
        }
        // Typed as the tenant is, not as its folder is: taken as it is.
        assert_eq!(tenant_of_folder("a*b"), "a*b");
    }
}
