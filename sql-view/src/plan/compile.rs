//! Typing: our parsed expressions to compiled [`Node`]s. Names resolve to column indexes or
//! system columns, parameters are bound, constants are folded and coerced to the type they
//! meet (a text literal compared with a TIMESTAMP column becomes a timestamp once, here, not
//! per row), and every operator's operand types are checked, with the position of the culprit.

use super::arith::{result_type, ArithOp};
use super::constants::{literal_value, numeric_operands, type_name, unify};
use super::node::{CompareOp, Node};
use super::SystemColumns;
use crate::ast::{BinaryOp, Expr, ExprKind, Literal, UnaryOp};
use crate::catalog::{TableDef, DELETED_COLUMN, SEQ_COLUMN};
use crate::error::{code, Position, Result, SqlError};
use crate::value::{DataType, Value};

/// What names and parameters mean while compiling one statement.
pub(crate) struct Scope<'a> {
    /// The table whose columns names refer to; `None` in VALUES (constants only).
    pub(crate) table: Option<&'a TableDef>,
    /// `FROM ns.t AS alias`.
    pub(crate) alias: Option<&'a str>,
    /// Values of `$1`, `$2`, ...
    pub(crate) params: &'a [Value],
    /// Set when the statement reads the clock (`now()`): its result depends on when it runs.
    pub(crate) reads_clock: std::cell::Cell<bool>,
    /// A join's tables in scope: names resolve over all of them, to fields of the joined row
    /// (`join.rs`); empty for one table, whose names resolve against `table`.
    pub(crate) sources: &'a [super::join::JoinSource],
    /// A subscription's plan: `now()` is read when evaluated, not folded (`clock.rs`).
    pub(crate) live_clock: bool,
}

/// Where a compiled expression's value comes from; constants are coerced by these rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// It reads the row.
    Row,
    /// A literal, or constants folded together.
    Literal,
    /// The parameter `$n`.
    Parameter(usize),
}

/// A compiled expression with its static type (`None`: the NULL literal, of no type yet).
#[derive(Debug, Clone)]
pub(crate) struct Typed {
    pub(crate) node: Node,
    pub(crate) data_type: Option<DataType>,
    pub(crate) source: Source,
    pub(crate) position: Option<Position>,
}

impl Typed {
    pub(crate) fn constant(&self) -> bool {
        self.source != Source::Row
    }
}

impl Scope<'_> {
    /// Compiles an expression, folding it to a constant when it reads nothing of the row.
    pub(crate) fn compile(&self, expr: &Expr) -> Result<Typed> {
        let typed = self.compile_kind(expr)?;
        if typed.constant() || !typed.node.is_constant() {
            return Ok(typed);
        }
        let value = typed.node.eval(&[][..], SystemColumns::default());
        let value = value
            .map_err(|error| error.or_at(typed.position))?
            .into_value();
        let data_type = value.data_type().or(typed.data_type);
        Ok(Typed {
            node: Node::Const(value),
            data_type,
            source: Source::Literal,
            ..typed
        })
    }

    fn compile_kind(&self, expr: &Expr) -> Result<Typed> {
        let position = expr.position;
        match &expr.kind {
            ExprKind::Column { qualifier, name } => self.column(qualifier, name, position),
            ExprKind::Literal(literal) => {
                let value = literal_value(literal, position)?;
                let data_type = value.data_type();
                let node = Node::Const(value);
                Ok(Typed {
                    node,
                    data_type,
                    source: Source::Literal,
                    position,
                })
            }
            ExprKind::Parameter(number) => self.parameter(*number, position),
            ExprKind::Unary { op, expr: operand } => self.unary(*op, self.compile(operand)?),
            ExprKind::Binary { op, left, right } => {
                let interval = |e: &Expr| match e.kind {
                    ExprKind::Literal(Literal::Interval { micros, .. }) => Some(micros),
                    _ => None,
                };
                match (op, interval(left), interval(right)) {
                    (BinaryOp::Plus, None, Some(micros)) => {
                        let typed = self.shifted_time(left, micros, 1, position)?;
                        self.fold_constant(typed)
                    }
                    (BinaryOp::Plus, Some(micros), None) => {
                        let typed = self.shifted_time(right, micros, 1, position)?;
                        self.fold_constant(typed)
                    }
                    (BinaryOp::Minus, None, Some(micros)) => {
                        let typed = self.shifted_time(left, micros, -1, position)?;
                        self.fold_constant(typed)
                    }
                    _ => self.binary(*op, self.compile(left)?, self.compile(right)?, position),
                }
            }
            ExprKind::Cast {
                expr: value,
                data_type,
            } => self.cast(self.compile(value)?, *data_type),
            ExprKind::Aggregate { function, .. } => Err(SqlError::new(
                code::GROUPING_ERROR,
                format!(
                    "aggregate {} is not allowed here (only in the SELECT list, HAVING and \
                     ORDER BY)",
                    function.name()
                ),
                position,
            )),
            ExprKind::Function { function, args } => {
                let typed = self.function(*function, args, position)?;
                self.fold_constant(typed)
            }
            ExprKind::Case {
                operand,
                branches,
                otherwise,
            } => {
                let typed =
                    self.case(operand.as_deref(), branches, otherwise.as_deref(), position)?;
                self.fold_constant(typed)
            }
            predicate => {
                let node = self.predicate(predicate)?;
                let data_type = Some(DataType::Boolean);
                Ok(Typed {
                    node,
                    data_type,
                    source: Source::Row,
                    position,
                })
            }
        }
    }

    fn parameter(&self, number: usize, position: Option<Position>) -> Result<Typed> {
        let slot = number
            .checked_sub(1)
            .and_then(|index| self.params.get(index));
        let value = slot.cloned().ok_or_else(|| {
            let given = self.params.len();
            SqlError::new(
                code::INVALID_PARAMETER,
                format!("no value for parameter ${number} ({given} given)"),
                position,
            )
        })?;
        let data_type = value.data_type();
        let source = Source::Parameter(number);
        Ok(Typed {
            node: Node::Const(value),
            data_type,
            source,
            position,
        })
    }

    fn column(
        &self,
        qualifier: &[String],
        name: &str,
        position: Option<Position>,
    ) -> Result<Typed> {
        let typed = |node, data_type| Typed {
            node,
            data_type: Some(data_type),
            source: Source::Row,
            position,
        };
        if !self.sources.is_empty() {
            let (node, data_type) = super::join::resolve(self.sources, qualifier, name, position)?;
            return Ok(typed(node, data_type));
        }
        let Some(table) = self.table else {
            return Err(SqlError::new(
                code::UNKNOWN_COLUMN,
                format!("column {name} cannot be used here: only constants are allowed"),
                position,
            ));
        };
        let qualified_ok = match qualifier {
            [] => true,
            [one] => self.alias.unwrap_or(table.name().table.as_str()) == one,
            [namespace, one] => {
                self.alias.is_none()
                    && namespace == table.name().namespace.as_str()
                    && one == table.name().table.as_str()
            }
            _ => false,
        };
        if !qualified_ok {
            return Err(SqlError::new(
                code::UNKNOWN_TABLE,
                format!("{} is not the table of this statement", qualifier.join(".")),
                position,
            ));
        }
        match name {
            SEQ_COLUMN => return Ok(typed(Node::Seq, DataType::BigInt)),
            DELETED_COLUMN => return Ok(typed(Node::Deleted, DataType::Boolean)),
            _ => {}
        }
        match table.column_index(name) {
            Some(index) => Ok(typed(Node::Column(index), table.columns()[index].data_type)),
            None => Err(SqlError::new(
                code::UNKNOWN_COLUMN,
                format!("column {name} does not exist in table {}", table.name()),
                position,
            )),
        }
    }

    /// A condition: an expression of type BOOLEAN (or NULL).
    pub(crate) fn condition(&self, expr: &Expr, context: &str) -> Result<Node> {
        let typed = self.compile(expr)?;
        match typed.data_type {
            None | Some(DataType::Boolean) => Ok(typed.node),
            Some(other) => Err(SqlError::type_mismatch(
                format!("{context} needs a BOOLEAN condition, found {other}"),
                typed.position,
            )),
        }
    }

    fn unary(&self, op: UnaryOp, operand: Typed) -> Result<Typed> {
        let wanted_numeric = op != UnaryOp::Not;
        let fits = match operand.data_type {
            None => true,
            Some(DataType::Boolean) => !wanted_numeric,
            Some(other) => wanted_numeric && other.is_numeric(),
        };
        if !fits {
            let wanted = if wanted_numeric {
                "a number"
            } else {
                "BOOLEAN"
            };
            return Err(SqlError::type_mismatch(
                format!(
                    "operator needs {wanted}, found {}",
                    type_name(operand.data_type)
                ),
                operand.position,
            ));
        }
        let node = match op {
            UnaryOp::Not => Node::Not(Box::new(operand.node)),
            UnaryOp::Minus => Node::Negate(Box::new(operand.node)),
            UnaryOp::Plus => operand.node,
        };
        let data_type = if op == UnaryOp::Not {
            Some(DataType::Boolean)
        } else {
            operand.data_type
        };
        let source = if operand.source == Source::Row {
            Source::Row
        } else {
            Source::Literal
        };
        let typed = Typed {
            node,
            data_type,
            source,
            position: operand.position,
        };
        if source == Source::Literal {
            return self.fold(typed);
        }
        Ok(typed)
    }

    /// [`Scope::fold`] when `typed` reads nothing of the row.
    fn fold_constant(&self, typed: Typed) -> Result<Typed> {
        if typed.constant() {
            return self.fold(typed);
        }
        Ok(typed)
    }

    fn fold(&self, typed: Typed) -> Result<Typed> {
        let value = typed.node.eval(&[][..], SystemColumns::default());
        let value = value
            .map_err(|error| error.or_at(typed.position))?
            .into_value();
        Ok(Typed {
            node: Node::Const(value),
            ..typed
        })
    }

    fn binary(
        &self,
        op: BinaryOp,
        left: Typed,
        right: Typed,
        position: Option<Position>,
    ) -> Result<Typed> {
        let compare_op = match op {
            BinaryOp::Eq => Some(CompareOp::Eq),
            BinaryOp::NotEq => Some(CompareOp::NotEq),
            BinaryOp::Lt => Some(CompareOp::Lt),
            BinaryOp::LtEq => Some(CompareOp::LtEq),
            BinaryOp::Gt => Some(CompareOp::Gt),
            BinaryOp::GtEq => Some(CompareOp::GtEq),
            _ => None,
        };
        let source = if left.constant() && right.constant() {
            Source::Literal
        } else {
            Source::Row
        };
        let typed = |node, data_type| Typed {
            node,
            data_type,
            source,
            position,
        };
        let result = if let Some(compare_op) = compare_op {
            typed(
                self.comparison(compare_op, left, right)?,
                Some(DataType::Boolean),
            )
        } else if op == BinaryOp::Concat {
            for side in [&left, &right] {
                if !matches!(side.data_type, None | Some(DataType::Text)) {
                    let found = type_name(side.data_type);
                    let message = format!("|| needs TEXT, found {found}");
                    return Err(SqlError::type_mismatch(message, side.position));
                }
            }
            let node = Node::Concat(Box::new(left.node), Box::new(right.node));
            typed(node, Some(DataType::Text))
        } else {
            let (node, data_type) = self.arithmetic(op, left, right)?;
            typed(node, Some(data_type))
        };
        if source == Source::Literal {
            return self.fold(result);
        }
        Ok(result)
    }

    fn arithmetic(&self, op: BinaryOp, left: Typed, right: Typed) -> Result<(Node, DataType)> {
        let (left, right) = numeric_operands(left, right)?;
        let op = match op {
            BinaryOp::Plus => ArithOp::Add,
            BinaryOp::Minus => ArithOp::Subtract,
            BinaryOp::Multiply => ArithOp::Multiply,
            BinaryOp::Divide => ArithOp::Divide,
            _ => ArithOp::Remainder,
        };
        let result = match (left.data_type, right.data_type) {
            (Some(a), Some(b)) => result_type(op, a, b),
            (Some(a), None) | (None, Some(a)) => result_type(op, a, a),
            (None, None) => DataType::Int,
        };
        let node = Node::Arith {
            op,
            left: Box::new(left.node),
            right: Box::new(right.node),
            result,
        };
        Ok((node, result))
    }

    /// A comparison after bringing both sides to comparable types.
    pub(crate) fn comparison(&self, op: CompareOp, left: Typed, right: Typed) -> Result<Node> {
        let (left, right) = unify(left, right)?;
        Ok(Node::Compare {
            op,
            left: Box::new(left.node),
            right: Box::new(right.node),
        })
    }
}
