import Foundation

/// When a state wants a sale reported to Metrc by, and so when Till raises an alert for sales still owed.
public enum ReportingDeadline: Sendable, Hashable, CustomStringConvertible {
    /// Real-time states (Colorado and most): as soon as possible; an alert once a sale has waited `grace`.
    case realTime
    /// Within so many hours of the sale (California: 24).
    case hoursAfterSale(Int)
    /// By this local time on the day after the business day (Oregon: 08:00).
    case nextDayAt(hour: Int, minute: Int)

    /// How long before the deadline an alert is raised (for real-time states: how long a sale may wait).
    public static let warning: TimeInterval = 2 * 3600
    public static let realTimeGrace: TimeInterval = 5 * 60

    /// `now`, `24h`, `next-day-08:00`.
    public init?(_ text: String) {
        let value = text.trimmingCharacters(in: .whitespaces).lowercased()
        if value == "now" {
            self = .realTime
        } else if value.hasSuffix("h"), let hours = Int(value.dropLast()), (1...168).contains(hours) {
            self = .hoursAfterSale(hours)
        } else if value.hasPrefix("next-day-") {
            let time = value.dropFirst("next-day-".count).split(separator: ":")
            guard time.count == 2, let hour = Int(time[0]), let minute = Int(time[1]), (0..<24).contains(hour), (0..<60).contains(minute)
            else { return nil }
            self = .nextDayAt(hour: hour, minute: minute)
        } else {
            return nil
        }
    }

    /// California reports within 24 hours, Oregon by 08:00 the next day; the other Metrc states in real time.
    public static func forState(_ state: String?) -> ReportingDeadline {
        switch state?.lowercased() {
        case "ca": .hoursAfterSale(24)
        case "or": .nextDayAt(hour: 8, minute: 0)
        default: .realTime
        }
    }

    /// The instant a sale made at `soldAt` on `businessDate` must be in Metrc by.
    public func deadline(soldAt: Date, businessDate: String, in timeZone: TimeZone) -> Date {
        switch self {
        case .realTime:
            return soldAt
        case .hoursAfterSale(let hours):
            return soldAt.addingTimeInterval(TimeInterval(hours) * 3600)
        case .nextDayAt(let hour, let minute):
            guard let day = FacilityDate.window(of: businessDate, in: timeZone) else { return soldAt }
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = timeZone
            return calendar.date(bySettingHour: hour, minute: minute, second: 0, of: day.end) ?? day.end
        }
    }

    /// When to raise the alert for that deadline.
    public func alertAt(deadline: Date) -> Date {
        switch self {
        case .realTime: deadline.addingTimeInterval(Self.realTimeGrace)
        default: deadline.addingTimeInterval(-Self.warning)
        }
    }

    public var description: String {
        switch self {
        case .realTime: "now"
        case .hoursAfterSale(let hours): "\(hours)h"
        case .nextDayAt(let hour, let minute): "next-day-" + FacilityDate.padded(hour, 2) + ":" + FacilityDate.padded(minute, 2)
        }
    }
}
