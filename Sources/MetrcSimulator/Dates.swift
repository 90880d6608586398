import Foundation

/// A date-time as written in a request: wall-clock fields and, when present, the zone offset.
struct SimDateTime: Equatable {
    var year, month, day, hour, minute, second: Int
    /// Fractional seconds as written, digits only ("5" for ".5"); empty when absent.
    var fraction: String
    /// Seconds east of UTC when the text carried `Z` or an offset; nil for a zone-less local time.
    var offsetSeconds: Int?

    /// Parses `yyyy-MM-ddTHH:mm[:ss[.f…]][Z|±hh:mm|±hhmm]`, checking that every field is in range.
    init?(_ text: String) {
        var scanner = Scanner(Array(text.utf8))
        guard let year = scanner.digits(4), scanner.take("-"), let month = scanner.digits(2), scanner.take("-"),
              let day = scanner.digits(2), scanner.take("T") || scanner.take("t") || scanner.take(" "),
              let hour = scanner.digits(2), scanner.take(":"), let minute = scanner.digits(2)
        else { return nil }
        var second = 0
        var fraction = ""
        if scanner.take(":") {
            guard let s = scanner.digits(2) else { return nil }
            second = s
            if scanner.take(".") {
                fraction = scanner.digitRun()
                guard (1...7).contains(fraction.count) else { return nil }
            }
        }
        var offset: Int? = nil
        if scanner.take("Z") || scanner.take("z") {
            offset = 0
        } else if let sign = scanner.sign() {
            guard let hh = scanner.digits(2) else { return nil }
            _ = scanner.take(":")
            guard let mm = scanner.digits(2), hh <= 23, mm <= 59 else { return nil }
            offset = sign * (hh * 3600 + mm * 60)
        }
        guard scanner.atEnd else { return nil }
        guard (1...12).contains(month), (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second),
              (1...SimDateTime.daysIn(month: month, year: year)).contains(day)
        else { return nil }
        (self.year, self.month, self.day, self.hour, self.minute, self.second) = (year, month, day, hour, minute, second)
        self.fraction = fraction
        self.offsetSeconds = offset
    }

    /// The instant this wall-clock time names in `zone` (ignored when the text had its own offset).
    func date(in zone: TimeZone) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = offsetSeconds.flatMap { TimeZone(secondsFromGMT: $0) } ?? zone
        let nanos = fraction.isEmpty ? 0 : Int((fraction + String(repeating: "0", count: 9 - fraction.count)))!
        let components = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute,
                                        second: second, nanosecond: nanos)
        return calendar.date(from: components)!
    }

    /// Metrc's way of writing a local sales time: `2026-11-22T14:05:00.000`.
    var localText: String {
        Self.text(year, month, day, hour, minute, second, millis: Int((fraction + "000").prefix(3))!)
    }

    /// `yyyy-MM-ddTHH:mm:ss.SSS`, padded by hand: `String(format:)` was a tenth of the simulator's time per receipt.
    static func text(_ year: Int, _ month: Int, _ day: Int, _ hour: Int, _ minute: Int, _ second: Int, millis: Int) -> String {
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
        }
        return "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2))T\(padded(hour, 2)):\(padded(minute, 2)):"
            + "\(padded(second, 2)).\(padded(millis, 3))"
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        var atEnd: Bool { index == bytes.count }

        mutating func take(_ character: Character) -> Bool {
            guard index < bytes.count, bytes[index] == character.asciiValue! else { return false }
            index += 1
            return true
        }

        mutating func digits(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + count] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            index += count
            return value
        }

        mutating func digitRun() -> String {
            var run = ""
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                run.append(Character(UnicodeScalar(bytes[index])))
                index += 1
            }
            return run
        }

        mutating func sign() -> Int? {
            if take("+") { return 1 }
            if take("-") { return -1 }
            return nil
        }
    }
}

enum SimDates {
    /// Metrc's way of writing an instant: `2026-11-22T21:05:00+00:00`, whole seconds in UTC.
    static func utcText(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d+00:00", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// A date as "yyyy-MM-dd": written so (and checked), or taken from a date-time (its instant's date in `zone`
    /// when it carries an offset, else its own date); nil when it is neither.
    static func day(_ text: String, in zone: TimeZone) -> String? {
        if let midnight = SimDateTime(text + "T00:00") { return String(midnight.localText.prefix(10)) }
        guard let parsed = SimDateTime(text) else { return nil }
        guard parsed.offsetSeconds != nil else { return String(parsed.localText.prefix(10)) }
        return String(localText(parsed.date(in: zone), in: zone).prefix(10))
    }

    /// The local wall-clock time of `date` in `zone`, as Metrc writes SalesDateTime.
    static func localText(_ date: Date, in zone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .nanosecond], from: date)
        return SimDateTime.text(c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!, millis: c.nanosecond! / 1_000_000)
    }
}
