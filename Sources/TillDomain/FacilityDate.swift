import Foundation

/// Dates as the facility's wall calendar shows them.
public enum FacilityDate {
    /// The facility-local calendar date of an instant, `YYYY-MM-DD`.
    public static func string(of date: Date, in timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return padded(parts.year ?? 0, 4) + "-" + padded(parts.month ?? 0, 2) + "-" + padded(parts.day ?? 0, 2)
    }

    /// `value` with leading zeros to `width` digits (String(format:) costs more than it should on the sale path).
    public static func padded(_ value: some BinaryInteger, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
