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

extension FacilityDate {
    /// The instants a facility-local business day spans, midnight to midnight in the facility's zone: 23 or
    /// 25 hours on the days clocks change. Nil for text that is not a `YYYY-MM-DD` date.
    public static func window(of day: String, in timeZone: TimeZone) -> (start: Date, end: Date)? {
        let parts = day.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        guard let start = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2])),
              string(of: start, in: timeZone) == day,
              let end = calendar.date(byAdding: .day, value: 1, to: start) else { return nil }
        return (start, end)
    }
}
