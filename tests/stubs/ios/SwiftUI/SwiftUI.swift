// Compile-only stub for tests: mirrors the public Swift signatures of Apple's SwiftUI used by the sample app,
// iOS 18 SDK (Xcode 16): the View / Scene / App protocols, their result builders, the views and modifiers the app
// calls. Modifier return types are simplified to one generic wrapper (SwiftUI returns `some View`, which callers
// cannot name either). As in Xcode 16's SDK, View, Scene, App and UIViewRepresentable are
// `@MainActor @preconcurrency` (https://developer.apple.com/documentation/swiftui/view, .../app/main()).
// Bodies trap: nothing here runs.
@_exported import Combine
@_exported import UIKit

@MainActor @preconcurrency
public protocol View {
    associatedtype Body: View
    @ViewBuilder @MainActor @preconcurrency var body: Self.Body { get }
}

extension Never: View {
    public var body: Never { fatalError("stub") }
}

public struct EmptyView: View {
    public init() {}
    public var body: Never { fatalError("stub") }
}

public struct TupleView<T>: View {
    public init(_ value: T) {}
    public var body: Never { fatalError("stub") }
}

public struct _ConditionalContent<TrueContent: View, FalseContent: View>: View {
    public var body: Never { fatalError("stub") }
}

extension Optional: View where Wrapped: View {
    public var body: Never { fatalError("stub") }
}

@resultBuilder
public struct ViewBuilder {
    public static func buildBlock() -> EmptyView { EmptyView() }
    public static func buildBlock<Content: View>(_ content: Content) -> Content { content }
    public static func buildBlock<each Content: View>(_ content: repeat each Content) -> TupleView<(repeat each Content)> {
        TupleView((repeat each content))
    }
    public static func buildIf<Content: View>(_ content: Content?) -> Content? { content }
    public static func buildEither<T: View, F: View>(first: T) -> _ConditionalContent<T, F> { fatalError("stub") }
    public static func buildEither<T: View, F: View>(second: F) -> _ConditionalContent<T, F> { fatalError("stub") }
}

@MainActor @preconcurrency
public protocol Scene {
    associatedtype Body: Scene
    @SceneBuilder @MainActor @preconcurrency var body: Self.Body { get }
}

extension Never: Scene {}

@resultBuilder
public struct SceneBuilder {
    public static func buildBlock<Content: Scene>(_ content: Content) -> Content { content }
}

@MainActor @preconcurrency
public protocol App {
    associatedtype Body: Scene
    @SceneBuilder @MainActor @preconcurrency var body: Self.Body { get }
    @MainActor @preconcurrency init()
}

extension App {
    @MainActor @preconcurrency public static func main() { fatalError("stub") }
}

public struct WindowGroup<Content: View>: Scene {
    public init(@ViewBuilder content: () -> Content) { fatalError("stub") }
    public var body: Never { fatalError("stub") }
}

public struct ModifiedContent<Content, Modifier>: View {
    public var body: Never { fatalError("stub") }
}

public struct _Modifier {}

public enum Font: Sendable {
    case caption, body, headline, title
}

public struct Color: View, Sendable {
    public static let green = Color()
    public static let black = Color()
    public static let white = Color()
    public static let red = Color()
    public func opacity(_ opacity: Double) -> Color { self }
    public var body: Never { fatalError("stub") }
}

public struct Alignment: Sendable {
    public static let top = Alignment()
    public static let center = Alignment()
    public static let bottom = Alignment()
}

public struct HorizontalAlignment: Sendable {
    public static let center = HorizontalAlignment()
    public static let leading = HorizontalAlignment()
}

extension View {
    public func frame(width: CGFloat? = nil, height: CGFloat? = nil, alignment: Alignment = .center)
        -> ModifiedContent<Self, _Modifier> { fatalError("stub") }
    public func frame(minWidth: CGFloat? = nil, idealWidth: CGFloat? = nil, maxWidth: CGFloat? = nil,
                      minHeight: CGFloat? = nil, idealHeight: CGFloat? = nil, maxHeight: CGFloat? = nil,
                      alignment: Alignment = .center) -> ModifiedContent<Self, _Modifier> { fatalError("stub") }
    public func position(x: CGFloat = 0, y: CGFloat = 0) -> ModifiedContent<Self, _Modifier> { fatalError("stub") }
    public func padding(_ length: CGFloat? = nil) -> ModifiedContent<Self, _Modifier> { fatalError("stub") }
    public func background<V: View>(_ content: V, alignment: Alignment = .center) -> ModifiedContent<Self, _Modifier> {
        fatalError("stub")
    }
    public func foregroundColor(_ color: Color?) -> ModifiedContent<Self, _Modifier> { fatalError("stub") }
    public func font(_ font: Font?) -> ModifiedContent<Self, _Modifier> { fatalError("stub") }
    public func scaledToFit() -> ModifiedContent<Self, _Modifier> { fatalError("stub") }
    public func onAppear(perform action: (() -> Void)? = nil) -> ModifiedContent<Self, _Modifier> {
        fatalError("stub")
    }
    public func onDisappear(perform action: (() -> Void)? = nil) -> ModifiedContent<Self, _Modifier> {
        fatalError("stub")
    }
}

public struct Text: View {
    public init(_ content: String) { fatalError("stub") }
    public init(verbatim content: String) { fatalError("stub") }
    public var body: Never { fatalError("stub") }
}

public struct Image: View {
    public init(decorative cgImage: CGImage, scale: CGFloat, orientation: Orientation = .up) { fatalError("stub") }
    public enum Orientation: UInt8, Sendable { case up, upMirrored, down, downMirrored, left, leftMirrored, right,
                                                    rightMirrored }
    public func resizable() -> Image { self }
    public var body: Never { fatalError("stub") }
}

public struct Spacer: View {
    public init(minLength: CGFloat? = nil) {}
    public var body: Never { fatalError("stub") }
}

public struct Button<Label: View>: View {
    public var body: Never { fatalError("stub") }
}

extension Button where Label == Text {
    public init<S: StringProtocol>(_ title: S, action: @escaping () -> Void) { fatalError("stub") }
}

public struct ZStack<Content: View>: View {
    public init(alignment: Alignment = .center, @ViewBuilder content: () -> Content) { fatalError("stub") }
    public var body: Never { fatalError("stub") }
}

public struct VStack<Content: View>: View {
    public init(alignment: HorizontalAlignment = .center, spacing: CGFloat? = nil,
                @ViewBuilder content: () -> Content) { fatalError("stub") }
    public var body: Never { fatalError("stub") }
}

public struct GeometryProxy {
    public var size: CGSize { fatalError("stub") }
}

public struct GeometryReader<Content: View>: View {
    public init(@ViewBuilder content: @escaping (GeometryProxy) -> Content) { fatalError("stub") }
    public var body: Never { fatalError("stub") }
}

public struct ForEach<Data: RandomAccessCollection, ID: Hashable, Content: View>: View {
    public init(_ data: Data, id: KeyPath<Data.Element, ID>, @ViewBuilder content: @escaping (Data.Element) -> Content) {
        fatalError("stub")
    }
    public var body: Never { fatalError("stub") }
}

public protocol Shape: View {}

extension Shape {
    public func stroke(_ content: Color, lineWidth: CGFloat = 1) -> ModifiedContent<Self, _Modifier> {
        fatalError("stub")
    }
}

public struct Rectangle: Shape {
    public init() {}
    public var body: Never { fatalError("stub") }
}

@propertyWrapper
public struct State<Value> {
    public init(wrappedValue value: Value) { fatalError("stub") }
    public var wrappedValue: Value {
        get { fatalError("stub") }
        nonmutating set { fatalError("stub") }
    }
}

@propertyWrapper
public struct StateObject<ObjectType: ObservableObject> {
    public init(wrappedValue thunk: @autoclosure @escaping () -> ObjectType) { fatalError("stub") }
    public var wrappedValue: ObjectType { fatalError("stub") }
}

public struct UIViewRepresentableContext<Representable: UIViewRepresentable> {}

@MainActor @preconcurrency
public protocol UIViewRepresentable: View where Self.Body == Never {
    associatedtype UIViewType: UIView
    typealias Context = UIViewRepresentableContext<Self>
    func makeUIView(context: Self.Context) -> Self.UIViewType
    func updateUIView(_ uiView: Self.UIViewType, context: Self.Context)
}

extension UIViewRepresentable {
    public var body: Never { fatalError("stub") }
}
