import Foundation

/// An amount of US dollars held as integer cents, so sums are exact.
public struct Money: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var cents: Int64

    public init(cents: Int64) { self.cents = cents }

    public static let zero = Money(cents: 0)

    /// Exact conversion from a decimal amount; nil when it has more than two decimal places or is out of range.
    public init?(exactly amount: Decimal) {
        var scaled = amount * 100
        var rounded = Decimal()
        NSDecimalRound(&rounded, &scaled, 0, .plain)
        guard rounded == scaled, let cents = Int64(exactly: NSDecimalNumber(decimal: rounded).int64Value),
              Decimal(cents) == rounded else { return nil }
        self.cents = cents
    }

    public var decimal: Decimal { Decimal(units: cents, exponent: -2) }

    /// Dollars with two decimals: 35.10. (Built by hand: String(format:) is slow on Linux.)
    public var description: String {
        let sign = cents < 0 ? "-" : ""
        let magnitude = cents.magnitude
        let fraction = magnitude % 100
        return "\(sign)\(magnitude / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    /// The shortest exact numeral, as a Decimal prints: 35.1, 35, 0.05.
    public var shortestNumeral: String {
        let sign = cents < 0 ? "-" : ""
        let magnitude = cents.magnitude
        let (whole, fraction) = (magnitude / 100, magnitude % 100)
        if fraction == 0 { return "\(sign)\(whole)" }
        if fraction % 10 == 0 { return "\(sign)\(whole).\(fraction / 10)" }
        return "\(sign)\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    public static func + (lhs: Money, rhs: Money) -> Money { Money(cents: lhs.cents + rhs.cents) }
    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.cents < rhs.cents }

    public init(from decoder: any Decoder) throws {
        let amount = try decoder.singleValueContainer().decode(Decimal.self)
        guard let money = Money(exactly: amount) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "money has at most two decimal places"))
        }
        self = money
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(decimal)
    }
}

extension Decimal {
    /// `units` × 10^`exponent`, exactly. Built from sign, exponent and significand: Decimal's division
    /// (`Decimal(units) / 100`) is long division, some ten microseconds a value on the sale path.
    public init(units: Int64, exponent: Int) {
        self.init(sign: units < 0 ? .minus : .plus, exponent: exponent, significand: Decimal(units.magnitude))
    }
}
