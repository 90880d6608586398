import Foundation

/// Metrc's units of measure and exact conversion between units of the same quantity type.
enum SimUnits {
    struct Unit: Sendable {
        let name: String
        let abbreviation: String
        let quantityType: String
        /// How many of the quantity type's base unit (Grams, Milliliters, Each) one of this unit is. Exact.
        let factor: Decimal
    }

    static let all: [Unit] = [
        Unit(name: "Each", abbreviation: "ea", quantityType: "CountBased", factor: 1),
        Unit(name: "Fluid Ounces", abbreviation: "fl oz", quantityType: "VolumeBased", factor: Decimal(string: "29.5735295625")!),
        Unit(name: "Gallons", abbreviation: "gal", quantityType: "VolumeBased", factor: Decimal(string: "3785.411784")!),
        Unit(name: "Grams", abbreviation: "g", quantityType: "WeightBased", factor: 1),
        Unit(name: "Kilograms", abbreviation: "kg", quantityType: "WeightBased", factor: 1000),
        Unit(name: "Liters", abbreviation: "l", quantityType: "VolumeBased", factor: 1000),
        Unit(name: "Milligrams", abbreviation: "mg", quantityType: "WeightBased", factor: Decimal(string: "0.001")!),
        Unit(name: "Milliliters", abbreviation: "ml", quantityType: "VolumeBased", factor: 1),
        Unit(name: "Ounces", abbreviation: "oz", quantityType: "WeightBased", factor: Decimal(string: "28.349523125")!),
        Unit(name: "Pints", abbreviation: "pt", quantityType: "VolumeBased", factor: Decimal(string: "473.176473")!),
        Unit(name: "Pounds", abbreviation: "lb", quantityType: "WeightBased", factor: Decimal(string: "453.59237")!),
        Unit(name: "Quarts", abbreviation: "qt", quantityType: "VolumeBased", factor: Decimal(string: "946.352946")!),
    ]

    /// Unit names are matched case-insensitively, as Metrc does.
    static func unit(named name: String) -> Unit? {
        let wanted = name.lowercased()
        return all.first { $0.name.lowercased() == wanted }
    }

    enum ConversionError: Error, Equatable {
        case differentQuantityTypes
        /// The converted quantity needs more decimal places than a package keeps.
        case inexact
    }

    /// `quantity` of `from` expressed in `to`, exactly, with at most `places` decimal places.
    static func convert(_ quantity: Decimal, from: Unit, to: Unit, places: Int16) -> Result<Decimal, ConversionError> {
        guard from.quantityType == to.quantityType else { return .failure(.differentQuantityTypes) }
        let inBase = quantity * from.factor
        var quotient = inBase / to.factor
        var rounded = Decimal()
        NSDecimalRound(&rounded, &quotient, Int(places), .plain)
        // Decimal multiplication of these short factors is exact, so this proves the rounding lost nothing.
        guard rounded * to.factor == inBase else { return .failure(.inexact) }
        return .success(rounded)
    }
}
