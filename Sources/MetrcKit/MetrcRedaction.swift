import Foundation

/// Keeps personal identifiers out of logs: a patient's or caregiver's license number is shown by its last four characters only.
public enum MetrcRedaction {
    /// "P12345678" → "*****5678"; four characters or fewer are masked entirely.
    public static func mask(_ value: String) -> String {
        guard value.count > 4 else { return String(repeating: "*", count: value.count) }
        return String(repeating: "*", count: value.count - 4) + value.suffix(4)
    }

    /// `text` with every occurrence of each secret masked; Metrc's error messages sometimes echo what was sent.
    static func redact(_ text: String, hiding secrets: [String]) -> String {
        secrets.filter { !$0.isEmpty }.reduce(text) { text, secret in
            text.replacingOccurrences(of: secret, with: mask(secret))
        }
    }
}
