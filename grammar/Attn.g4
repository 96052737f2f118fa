// The .attn language (../shared/design/LANGUAGE.md), as an ANTLR 4 grammar.
//
// Generated to C++ at build time (antlr4 -Dlanguage=Cpp -visitor -no-listener); only
// compiler/Parser.cpp includes the generated code, and turns its parse tree into our AST.
//
// Statements end at a newline or ';'. Inside parentheses a newline is not a statement end,
// so a long call or expression can be split over lines; the lexer tracks the depth.
grammar Attn;

@lexer::members {
  int parenDepth = 0;
}

// ---- parser ------------------------------------------------------------------------

file
  : sep? (definition sep?)* EOF
  ;

definition
  : fnDef
  | attentionDef
  ;

fnDef
  : FN name=ID '(' (ID (',' ID)*)? ')' '=' expr
  ;

// Statements must be separated by a newline or ';'. The grammar accepts them without one
// so that a missing separator is one precise error (reported by Parser.cpp) instead of a
// cascade of recovery errors.
attentionDef
  : ATTENTION name=ID NL* '{' (statement | sep)* '}'
  ;

statement
  : PARAM name=ID ':' type=ID '=' expr      # paramStmt
  | MASK maskSpec scope?                   # maskStmt
  | LET name=ID '=' expr                   # letStmt
  | OUT expr                               # outStmt
  ;

maskSpec
  : CAUSAL                                 # causalMask
  | FULL                                   # fullMask
  | WINDOW '(' expr ')'                    # windowMask
  | expr                                   # exprMask
  ;

// `per document` (docs/LANGUAGE-NOTES.md): contextual words, not keywords, so that
// `document` stays a usable name; Parser.cpp checks the spelling and reports a located error.
scope
  : per=ID what=ID?
  ;

sep
  : (NL | ';')+
  ;

// Precedence, tightest first. '^' binds tighter than unary minus: -x^2 = -(x^2).
expr
  : primary                                               # primaryExpr
  | <assoc=right> expr op='^' expr                        # powExpr
  | op=('-' | '+' | '!') expr                             # unaryExpr
  | expr op=('*' | '/') expr                              # mulExpr
  | expr op=('+' | '-') expr                              # addExpr
  | expr op=('<' | '<=' | '>' | '>=') expr                # relExpr
  | expr op=('==' | '!=') expr                            # eqExpr
  | expr op='&&' expr                                     # andExpr
  | expr op='||' expr                                     # orExpr
  | <assoc=right> expr op='?' expr ':' expr               # condExpr
  ;

primary
  : NUMBER                                                # numberLit
  | (TRUE | FALSE)                                        # boolLit
  | callee=ID '(' (expr (',' expr)*)? ')'                 # callExpr
  | ID                                                    # nameExpr
  | '(' expr ')'                                          # parenExpr
  ;

// ---- lexer -------------------------------------------------------------------------

ATTENTION : 'attention' ;
FN        : 'fn' ;
PARAM     : 'param' ;
LET       : 'let' ;
MASK      : 'mask' ;
OUT       : 'out' ;
CAUSAL    : 'causal' ;
FULL      : 'full' ;
WINDOW    : 'window' ;
TRUE      : 'true' ;
FALSE     : 'false' ;

LPAREN : '(' { parenDepth++; } ;
RPAREN : ')' { if (parenDepth > 0) parenDepth--; } ;
LBRACE : '{' ;
RBRACE : '}' ;
COMMA  : ',' ;
SEMI   : ';' ;
COLON  : ':' ;
QUESTION : '?' ;
LE  : '<=' ;
GE  : '>=' ;
EQ  : '==' ;
NE  : '!=' ;
AND : '&&' ;
OR  : '||' ;
LT  : '<' ;
GT  : '>' ;
ASSIGN : '=' ;
NOT   : '!' ;
PLUS  : '+' ;
MINUS : '-' ;
STAR  : '*' ;
SLASH : '/' ;
CARET : '^' ;

ID : [A-Za-z_] [A-Za-z0-9_]* ;

NUMBER
  : DIGITS ('.' DIGITS?)? EXPONENT?
  | '.' DIGITS EXPONENT?
  ;
fragment DIGITS   : [0-9]+ ;
fragment EXPONENT : [eE] [+-]? DIGITS ;

COMMENT : ('#' | '//') ~[\r\n]* -> channel(HIDDEN) ;

// A newline ends a statement, except inside parentheses.
NL : '\r'? '\n' { if (parenDepth > 0) setChannel(HIDDEN); } ;

WS : [ \t\f\r]+ -> channel(HIDDEN) ;
