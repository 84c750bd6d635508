// Compile-only stub for tests: mirrors the public Swift signature of Apple's ImageIO used by generated code,
// iOS 18 SDK (Xcode 16): CGImagePropertyOrientation, the EXIF orientation (raw values 1...8), a C enumeration
// Swift imports as a frozen, Sendable enum. Checked against
// https://developer.apple.com/documentation/imageio/cgimagepropertyorientation
@_exported import CoreGraphics

@frozen
public enum CGImagePropertyOrientation: UInt32, Sendable {
    case up = 1, upMirrored = 2, down = 3, downMirrored = 4, leftMirrored = 5, right = 6, rightMirrored = 7, left = 8
}
