import GRDB
import TillDomain

/// SQLite's answers that a register can act on: the disk is full, or the database cannot be written. The
/// transaction that met them was rolled back whole, so the caller hears that nothing was recorded, and a
/// retry once space is back (or the file writable) goes through on the same connection, without a restart.
extension DatabaseError: ExplainedStoreFailure {
    public var refusal: TillError? {
        switch resultCode {
        case .SQLITE_FULL:
            TillError(.unavailable, code: "storage_full",
                      "The disk holding Till's database is full; nothing was recorded. Free space, then send it again.")
        case .SQLITE_READONLY:
            TillError(.unavailable, code: "storage_read_only",
                      "Till's database cannot be written (a read-only file or file system); nothing was recorded. "
                          + "Send it again once it is writable.")
        default:
            nil
        }
    }
}
