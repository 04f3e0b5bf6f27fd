//! placeholder
pub(super) async fn handle() -> &'static str {
    ""
}
