import JSONWriting
import TillDomain

extension JSONWriter {
    /// Money as its shortest exact numeral (35.1, 35, 0.05), as JSONEncoder writes the Decimal.
    mutating func field(_ key: String, _ value: Money?) {
        field(key, numeral: value?.shortestNumeral)
    }
}
