/// ANSI colour, painted in one place: every view asks for a colour by name, and gets plain text when colour
/// is off (no terminal, `--no-color`, `NO_COLOR`, `--json`).
enum Paint {
    enum Colour: String {
        case bold = "1", dim = "2", red = "31", green = "32", yellow = "33", magenta = "35"
        case boldRed = "31;1", boldGreen = "32;1"
    }

    static func paint(_ s: String, _ colour: Colour, _ on: Bool) -> String {
        on ? "\u{1B}[\(colour.rawValue)m\(s)\u{1B}[0m" : s
    }

    static func red(_ s: String, _ on: Bool) -> String { paint(s, .red, on) }
    static func yellow(_ s: String, _ on: Bool) -> String { paint(s, .yellow, on) }
    static func green(_ s: String, _ on: Bool) -> String { paint(s, .green, on) }
}
