import Foundation
import Testing
import TillDomain
@testable import TillAPI

/// The bodies of returns and repairs, read as the OpenAPI document describes them.
@Suite struct RequestBodyTests {
    func refusal(_ read: (Data) throws(TillError) -> Void, _ body: String) -> TillError? {
        do {
            try read(Data(body.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test func aNullDryRunIsRefusedNotTakenForARealRepair() throws {
        let repair: (Data) throws(TillError) -> Void = { body throws(TillError) in _ = try RequestDecoding.decodeRepair(body) }
        #expect(try RequestDecoding.decodeRepair(Data()).dryRun == nil)  // no body: a real repair
        #expect(try RequestDecoding.decodeRepair(Data(#"{"dryRun":true}"#.utf8)).dryRun == true)
        let null = refusal(repair, #"{"dryRun":null}"#)
        #expect(null?.code == "invalid_field")
        #expect(null?.details["field"] == "dryRun")
        #expect(refusal(repair, "null")?.code == "invalid_request")
    }

    @Test func aReturnsOptionalFieldsAreLeftOutNotNull() {
        let read: (Data) throws(TillError) -> Void = { body throws(TillError) in _ = try RequestDecoding.decodeReturn(body) }
        #expect(refusal(read, #"{"clientReturnId":"r-1","all":true,"reason":"Defective"}"#) == nil)
        let bodies = [
            "lines": #"{"clientReturnId":"r-1","all":true,"reason":"Defective","lines":null}"#,
            "all": #"{"clientReturnId":"r-1","lines":[],"reason":"Defective","all":null}"#,
            "disposition": #"{"clientReturnId":"r-1","all":true,"reason":"Defective","disposition":null}"#,
            "note": #"{"clientReturnId":"r-1","all":true,"reason":"Defective","note":null}"#,
        ]
        for (field, body) in bodies {
            let refused = refusal(read, body)
            #expect(refused?.code == "invalid_field", "\(field)")
            #expect(refused?.details["field"] == field)
        }
    }
}
