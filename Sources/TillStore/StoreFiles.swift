import Foundation

/// Till's data folder and database files, kept to Till's own user: the database holds patients' licence
/// numbers, the terminals' token hashes and the audit log, and its WAL holds the latest of them.
public enum StoreFiles {
    public static let folderMode: mode_t = 0o700
    public static let fileMode: mode_t = 0o600

    /// The database and the files SQLite keeps beside it while it is open.
    public static func databaseFiles(_ databasePath: String) -> [String] {
        [databasePath, databasePath + "-wal", databasePath + "-shm"]
    }

    /// Creates the folder if needed and closes it and every database file that exists to group and others.
    /// Returns what could not be closed, one sentence each (a folder Till's user does not own, say). A sticky
    /// folder shared by all users (/tmp) is never changed: it is not Till's to close.
    @discardableResult
    public static func secure(folder: String, database: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: Int(folderMode)])
        var unfixed: [String] = []
        if let mode = mode(of: folder), mode & 0o077 != 0, mode & S_ISVTX == 0, chmod(folder, folderMode) != 0 {
            unfixed.append("cannot make the data folder \(folder) mode 0700: \(String(cString: strerror(errno)))")
        }
        for file in databaseFiles(database) {
            guard let mode = mode(of: file), mode & 0o077 != 0 else { continue }
            if chmod(file, fileMode) != 0 {
                unfixed.append("cannot make \(file) mode 0600: \(String(cString: strerror(errno)))")
            }
        }
        return unfixed
    }

    /// What is open wider than it should be, one sentence each; empty when all is right.
    public static func problems(folder: String, database: String) -> [String] {
        var problems: [String] = []
        if let mode = mode(of: folder), mode & 0o077 != 0 {
            problems.append("the data folder \(folder) is mode \(octal(mode)); want 0700")
        }
        for file in databaseFiles(database) {
            if let mode = mode(of: file), mode & 0o077 != 0 {
                problems.append("\(file) is mode \(octal(mode)); want 0600")
            }
        }
        return problems
    }

    /// Permission bits (with the sticky bit), or nil when there is no such file.
    static func mode(of path: String) -> mode_t? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return status.st_mode & 0o7777
    }

    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode & 0o777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
