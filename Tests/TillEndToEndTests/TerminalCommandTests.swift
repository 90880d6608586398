import Foundation
import Testing
import TillStore

/// Managing terminals from the command line while `till serve` runs.
@Suite struct TerminalCommandTests {
    @Test func rotatingATerminalVoidsItsOldTokenAtOnceEvenForSales() async throws {
        try await TillProcessWorld.run { world in
            let till = try await world.launch()
            defer { till.kill9() }
            // 201 or 202 (Metrc slower than the deadline under load): either way the sale path now caches the token.
            #expect([201, 202].contains(try await world.sell("rotate-1").status))

            let rotated = try await world.command(["terminals", "rotate", "register-1"])
            #expect(rotated.status == 0, "\(rotated.errors)")
            let token = try #require(rotated.output.split(separator: "\n").last.map(String.init))
            #expect(token.hasPrefix("till_") && token != world.token)

            let old = try await world.sell("rotate-2")
            #expect(old.status == 401)
            #expect((old.json["error"] as? [String: Any])?["code"] as? String == "invalid_token")
            #expect([201, 202].contains(try await world.sell("rotate-3", token: token).status))
            #expect(try await world.sell("rotate-2", token: world.token).status == 401)

            let list = try await world.command(["terminals", "list"]).output.split(separator: "\n")
            #expect(list.filter { $0.hasPrefix("register-1\t") } == ["register-1\tregister\tactive"], "\(list)")
            let store = try TillStore(path: world.directory + "/till.sqlite")
            #expect(try store.auditLog(action: "terminal.rotated").map(\.event.subject) == ["register-1"])
            #expect(try await world.command(["terminals", "rotate", "nobody"]).status == 1)
        }
    }
}
