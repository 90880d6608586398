import Foundation

/// What a unit measures; Metrc only converts between units of the same kind.
public enum QuantityKind: String, Sendable, Codable {
    case count = "CountBased"
    case weight = "WeightBased"
    case volume = "VolumeBased"
}

/// A Metrc unit of measure with its exact factor to the kind's base unit (each, gram, millilitre).
public struct UnitOfMeasure: Sendable, Hashable {
    public let name: String
    public let kind: QuantityKind
    public let factorToBase: Decimal

    public static let each = UnitOfMeasure(name: "Each", kind: .count, factorToBase: 1)
    public static let grams = UnitOfMeasure(name: "Grams", kind: .weight, factorToBase: 1)
    public static let milligrams = UnitOfMeasure(name: "Milligrams", kind: .weight, factorToBase: Decimal(string: "0.001")!)
    public static let kilograms = UnitOfMeasure(name: "Kilograms", kind: .weight, factorToBase: 1000)
    /// The international avoirdupois ounce, exactly.
    public static let ounces = UnitOfMeasure(name: "Ounces", kind: .weight, factorToBase: Decimal(string: "28.349523125")!)
    public static let pounds = UnitOfMeasure(name: "Pounds", kind: .weight, factorToBase: Decimal(string: "453.59237")!)
    public static let milliliters = UnitOfMeasure(name: "Milliliters", kind: .volume, factorToBase: 1)
    public static let liters = UnitOfMeasure(name: "Liters", kind: .volume, factorToBase: 1000)
    public static let fluidOunces = UnitOfMeasure(name: "Fluid Ounces", kind: .volume, factorToBase: Decimal(string: "29.5735295625")!)

    public static let all: [UnitOfMeasure] = [.each, .grams, .milligrams, .kilograms, .ounces, .pounds,
                                              .milliliters, .liters, .fluidOunces]

    /// Looks a unit up by Metrc's name (case-insensitively; "Gram" and "Grams" both found).
    public static func named(_ name: String) -> UnitOfMeasure? {
        let wanted = name.lowercased()
        return all.first { $0.name.lowercased() == wanted || $0.name.lowercased() == wanted + "s" }
    }
}

/// Exact arithmetic on cannabis quantities.
public enum Quantities {
    /// Stored quantities are whole multiples of 10^-12 of the package's unit ("picos"), so an eighth of an
    /// ounce taken from a package kept in grams (3.543690390625 g) is exact, and Int64 still holds
    /// over nine million units of any package.
    public static let storedDecimalPlaces: Int16 = 12
    static let picosPerUnit = Decimal(string: "1000000000000")!
    /// Registers send quantities with at most this many decimal places.
    public static let inputDecimalPlaces = 6

    /// `quantity` in `from` expressed in `to`, or nil when the kinds differ or the result is not a whole number of picos.
    public static func convert(_ quantity: Decimal, from: UnitOfMeasure, to: UnitOfMeasure) -> Decimal? {
        guard from.kind == to.kind else { return nil }
        if from == to { return quantity }
        let inBase = quantity * from.factorToBase
        let converted = inBase / to.factorToBase
        guard let picos = picos(exactly: converted), decimal(picos: picos) * to.factorToBase == inBase else {
            return nil
        }
        return decimal(picos: picos)
    }

    /// The quantity in picos, or nil when it is finer than 10^-12 or does not fit.
    public static func picos(exactly quantity: Decimal) -> Int64? {
        var scaled = quantity * picosPerUnit
        var rounded = Decimal()
        NSDecimalRound(&rounded, &scaled, 0, .plain)
        guard rounded == scaled, abs(rounded) < Decimal(Int64.max) else { return nil }
        let value = NSDecimalNumber(decimal: rounded).int64Value
        return Decimal(value) == rounded ? value : nil
    }

    /// True when the quantity has at most `places` decimal places.
    public static func hasAtMost(_ places: Int, decimalPlacesIn quantity: Decimal) -> Bool {
        var value = quantity
        var rounded = Decimal()
        NSDecimalRound(&rounded, &value, places, .plain)
        return rounded == quantity
    }

    public static func decimal(picos: Int64) -> Decimal { Decimal(units: picos, exponent: -Int(storedDecimalPlaces)) }
}
