import Foundation
import TillLoad

// till-bench: measures Till against the in-process Metrc simulator; `scripts/bench` builds and runs it.
let options: BenchOptions
do {
    options = try BenchOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    guard let message = error.message else {
        print(BenchOptions.usage)
        exit(0)
    }
    FileHandle.standardError.write(Data("till-bench: \(message)\n\n\(BenchOptions.usage)\n".utf8))
    exit(2)
}
leftovers.name("till-bench")
let signalSources = leftovers.installSignalHandlers()
// Far beyond a release run (well under 2 minutes; the drain alone is allowed 120 s) and a debug one
// (about 3): every wait has its own deadline, so only a hang nobody foresaw gets here.
leftovers.startWatchdog(after: .seconds(600))
exit(await Bench(options: options).run())
